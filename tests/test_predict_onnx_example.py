"""examples/predict_onnx.py predicts from an export in a virtual environment of only onnxruntime,
tokenizers, numpy and pillow (no torch, no headstart), and agrees with ``headstart predict``.

The environment is built once at ``.venv-onnx-only`` in the repository (ignored by git) with the
versions the test's own environment has, and reused while it imports the four packages.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import headstart
from headstart.backbones import create_backbone
from headstart.learn.head import LinearHead
from headstart.model import Model

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "predict_onnx.py"
VENV = REPO / ".venv-onnx-only"
PACKAGES = ("onnxruntime", "tokenizers", "numpy", "pillow")
IMPORTS = "import onnxruntime, tokenizers, numpy, PIL"
# Without PYTHONPATH, which points the test's own Python at headstart's source.
CLEAN = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _works(venv: Path) -> bool:
    python = _python(venv)
    return python.is_file() and subprocess.run([python, "-c", IMPORTS], capture_output=True, timeout=120,
                                               env=CLEAN).returncode == 0


@pytest.fixture(scope="session")
def onnx_only_python() -> Path:
    """The Python of the four-package environment, built (through a temporary folder) when missing."""
    if not _works(VENV):
        staging = Path(tempfile.mkdtemp(prefix=".venv-onnx-only.", dir=REPO))
        try:
            subprocess.run([sys.executable, "-m", "venv", staging], check=True, capture_output=True, timeout=300)
            pins = [f"{name}=={metadata.version(name)}" for name in PACKAGES]
            subprocess.run([_python(staging), "-m", "pip", "install", "-q", *pins], check=True, capture_output=True,
                           timeout=900, env=CLEAN)
        except (subprocess.SubprocessError, OSError) as error:
            shutil.rmtree(staging, ignore_errors=True)
            detail = getattr(error, "stderr", b"") or b""
            pytest.skip(f"skipped: cannot build a venv of {', '.join(PACKAGES)} here "
                        f"({detail.decode(errors='replace').strip().splitlines()[-1:] or error})")
        shutil.rmtree(VENV, ignore_errors=True)
        staging.rename(VENV)  # the venv's scripts name the staging path; `python -m pip` does not need them
    return _python(VENV)


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _run_example(python: Path, exported: Path, source: Path, output: Path) -> list[dict]:
    result = subprocess.run([python, EXAMPLE, exported, source, output], capture_output=True, text=True, timeout=300,
                            env=CLEAN)
    assert result.returncode == 0, result.stderr
    return _read(output)


def _compare(ours: list[dict], theirs: tuple[list[str], list[list[str]]], classes: list[str], tolerance: float):
    header, rows = theirs
    assert len(ours) == len(rows)
    for mine, row in zip(ours, rows, strict=True):
        expected = dict(zip(header, row, strict=True))
        assert mine["prediction"] == expected["prediction"]
        for name in classes:
            assert abs(float(mine[f"p_{name}"]) - float(expected[f"p_{name}"])) <= tolerance


def test_the_environment_has_no_torch(onnx_only_python):
    result = subprocess.run([onnx_only_python, "-c", "import torch"], capture_output=True, text=True, timeout=120,
                            env=CLEAN)
    assert result.returncode != 0 and "No module named 'torch'" in result.stderr
    result = subprocess.run([onnx_only_python, "-c", "import headstart"], capture_output=True, text=True, timeout=120,
                            env=CLEAN)
    assert result.returncode != 0


def test_the_example_predicts_texts_as_headstart_predict_does(onnx_only_python, probe_run, learnable_csv, tmp_path):
    model, folder = probe_run
    exported = headstart.export(folder, tmp_path / "exported")
    ours = _run_example(onnx_only_python, exported, learnable_csv, tmp_path / "out.csv")
    assert list(ours[0])[:2] == ["text", "label"]  # the input's columns first
    _compare(ours, headstart.predict_table(folder, learnable_csv), model.classes, 2e-4)  # headstart prints 4 decimals


def test_the_example_predicts_images_as_headstart_does(onnx_only_python, image_folder, tmp_path):
    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=40)
    rng = np.random.default_rng(0)
    head = LinearHead(rng.normal(0, 0.5, (3, 512)).astype(np.float32), np.zeros(3, np.float32))
    model = Model(backbone, head, ["blue", "dark", "red"], backbone_options={"image_size": 40}, finetuned=True)
    exported = model.export(tmp_path / "exported")
    ours = _run_example(onnx_only_python, exported, image_folder, tmp_path / "out.csv")
    # the same pillow resize as headstart.load of the export: the same numbers
    _compare(ours, headstart.predict_table(exported, image_folder), model.classes, 2e-4)
    # pillow's resize against torchvision's differs by a level or two in a pixel: the same labels
    _compare(ours, headstart.predict_table(model, image_folder), model.classes, 2e-2)


def test_the_example_predicts_with_a_tfidf_model_from_scratch_as_headstart_does(onnx_only_python, learnable_csv,
                                                                              tmp_path):
    from headstart.transfer.scratch_model import ScratchModel
    from headstart.transfer.scratch_models import Task, tfidf_words_chars

    data = headstart.prepare(learnable_csv, ratios=(0.5, 0.2, 0.3))
    train, val = data.split("train"), data.split("val")
    fitted = tfidf_words_chars(Task(train.items, train.label_ids(train.classes), val.items,
                                    val.label_ids(train.classes), len(train.classes)))
    model = ScratchModel(fitted.predictor, train.classes, name=fitted.name, method=fitted.method)
    folder = model.save(tmp_path / "model")
    exported = headstart.export(folder, tmp_path / "exported")  # raw texts in: no tokenizer.json
    ours = _run_example(onnx_only_python, exported, learnable_csv, tmp_path / "out.csv")
    _compare(ours, headstart.predict_table(folder, learnable_csv), model.classes, 2e-4)  # headstart prints 4 decimals
