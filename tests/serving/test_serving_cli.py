"""``headstart serve``'s own errors: bad limits, and the serve extra not installed (one line each, exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headstart.cli import app

REPO = Path(__file__).resolve().parents[2]

BLOCKER = """
import importlib.abc
import sys


class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Absent())
"""


@pytest.mark.parametrize("option", [["--max-batch", "0"], ["--max-items", "0"], ["--max-wait-ms", "-1"]])
def test_limits_below_one_are_refused_before_anything_loads(tmp_path, option):
    result = CliRunner().invoke(app, ["serve", str(tmp_path), *option])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: headstart serve: --max-batch and --max-items must be 1 or more, "
                                          "--max-wait-ms 0 or more (give positive limits)"]


@pytest.mark.parametrize("package", ["prometheus_client", "uvicorn", "fastapi"])
def test_without_the_serve_extra_serve_says_what_to_install(tmp_path, package):
    """A sitecustomize.py on PYTHONPATH makes importing ``package`` fail as if it were not installed."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER.format(blocked=package), encoding="utf-8")
    path = os.pathsep.join(filter(None, [str(tmp_path), str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "headstart.cli", "serve", str(tmp_path)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": path})
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"error: `headstart serve` needs {package}, which is not installed "
                                        "(pip install 'headstart[serve]')"]
