"""The wall between headstart's core and its labeling package: the core trains, predicts and starts
its command line without the ``label`` extra, and the labeling package uses only the core's public
names."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import headstart.labeling

LABELING = Path(headstart.labeling.__file__).resolve().parent
# The packages of the `label` extra, by the name they are imported under.
LABEL_EXTRA = ("sqlalchemy", "alembic", "psycopg", "fastapi", "uvicorn", "cleanlab", "krippendorff", "statsmodels",
               "multipart")

WITHOUT_THE_EXTRA = """
import importlib.abc, json, sys

BLOCKED = set(sys.argv[3].split(","))


class WithoutLabelExtra(importlib.abc.MetaPathFinder):
    # First on the meta path: an import of a blocked package fails as if it were not installed.
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, WithoutLabelExtra())
import headstart
import headstart.cli  # the command line, with `headstart label` in it

model = headstart.fit(sys.argv[1], backbone=sys.argv[2], mode="probe")
predicted = model.predict(["the team won the match", "a spicy pasta sauce"])
print(json.dumps({"classes": model.classes, "predicted": len(predicted),
                  "loaded": sorted({m.partition(".")[0] for m in sys.modules} & BLOCKED)}))
"""


@pytest.mark.subprocess
def test_the_core_fits_and_predicts_without_the_label_extra(text_csv, tiny_bert_name, tmp_path):
    data = text_csv("topics.csv", n_per_class=10)
    done = subprocess.run([sys.executable, "-c", WITHOUT_THE_EXTRA, str(data), tiny_bert_name, ",".join(LABEL_EXTRA)],
                          capture_output=True, text=True, cwd=tmp_path, env=os.environ.copy(), timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"classes": ["food", "sports", "tech"], "predicted": 2, "loaded": []}


def core_imports(path: Path) -> list[str]:
    """The imports in ``path`` that reach past the core's public names: a name or module starting
    with ``_`` from ``headstart.*``, or the top package ``headstart`` itself; as 'line: statement'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {alias.name}" for alias in node.names
                      if alias.name.partition(".")[0] == "headstart"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.partition(".")[0] == "headstart":
            private_module = any(part.startswith("_") for part in node.module.split("."))
            private = [alias.name for alias in node.names if alias.name.startswith("_")]
            if node.module == "headstart" or private_module or private:
                found.append(f"{node.lineno}: from {node.module} import "
                             f"{', '.join(alias.name for alias in node.names)}")
    return sorted(found, key=lambda line: int(line.partition(":")[0]))


def test_the_labeling_package_imports_only_public_names_of_the_core():
    modules = sorted(LABELING.rglob("*.py"))
    assert len(modules) > 15  # the package, its web app and its migrations
    reaches = {str(path.relative_to(LABELING)): core_imports(path) for path in modules}
    assert {name: found for name, found in reaches.items() if found} == {}


def test_the_check_sees_private_and_top_package_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import headstart\nfrom headstart.learn.probe import _fit, fit_probe\n"
                      "from headstart import fit\ndef f():\n    import headstart.api\n"
                      "from headstart.data import read_dataset\nfrom .store import _record\n", encoding="utf-8")
    assert core_imports(sample) == ["1: import headstart", "2: from headstart.learn.probe import _fit, fit_probe",
                                    "3: from headstart import fit", "5: import headstart.api"]
