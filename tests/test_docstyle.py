"""The public API's docstrings keep one style, Google's, checked by ruff's pydocstyle rules.

The rules and the convention live in pyproject.toml ([tool.ruff.lint]), so ``ruff check`` from the
repository root checks the same: every public module, class, function and method has a docstring,
its first line a one-line summary, and every parameter of a function with an ``Args:`` section is
described there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "headstart"
# What a user of the library reads: the root modules and the packages behind fit, predict, rank,
# curve and layers. The labeling package and the command-line modules are not checked.
PUBLIC = ("__init__.py", "api.py", "sklearn.py", "model.py", "errors.py", "progress.py", "output.py", "paths.py", "lazy.py", "body_limit.py",
          "learn", "data", "backbones", "features", "evaluate", "transfer", "serving", "exported")


def test_the_public_api_docstrings_follow_the_google_style():
    paths = [str(PACKAGE / name) for name in PUBLIC]
    # Ruff reads its rules from pyproject.toml (a --select here would drop their ignores);
    # --no-cache: nothing is written into the working tree.
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                             *paths],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, ("ruff found docstrings out of style (pip install -e '.[dev]' for ruff):\n"
                                    + result.stdout + result.stderr)
