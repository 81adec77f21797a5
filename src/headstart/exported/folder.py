"""``headstart export``: a model as a folder that predicts without headstart.

The folder holds ``model.onnx`` (backbone and head, probabilities out; see
:mod:`headstart.exported.graph`), ``labels.json`` (classes and how inputs are prepared),
``tokenizer.json`` for text and a model card ``README.md``. It is written into a temporary folder
beside the target and moved into place, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from headstart.data import assign_splits, read_dataset
from headstart.errors import HeadstartError, ModelError
from headstart.exported.card import model_card
from headstart.exported.graph import (calibration_batches, quantize_dynamic_int8, quantize_static_int8,
                                    write_graph)
from headstart.exported.runtime import FORMAT, GRAPH, LABELS, TOKENIZER, is_exported
from headstart.output import write_json

QUANTIZATIONS = (None, "int8")
CALIBRATION_ITEMS = 100


def export_model(model, out: str | Path, *, quantize: str | None = None) -> Path:
    """Write ``model`` (a :class:`headstart.model.Model`) as an exported folder at ``out``.

    Args:
        model: the model to export; probe and fine-tuned models alike.
        out: the folder to write; an exported folder there is replaced.
        quantize: None (fp32) or ``"int8"``: dynamic quantization for text, static for images (operator
            format, pixels fed to the first convolution) with activation ranges from a sample of the
            training data.

    Returns:
        ``out`` as a Path.

    Raises:
        ModelError: ``out`` is something else, the backbone cannot be exported, or the training
            data for calibration are not where the model was trained from.
    """
    check_quantization(quantize)
    out = Path(out)
    check_target(out)
    # Before the graph's seconds of export: data that are not there fail at once.
    calibration = calibration_items(model) if quantize and model.backbone.modality == "image" else None
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        backbone = model.backbone
        labels = {"format": FORMAT, "name": out.name, "classes": model.classes, "input": backbone.modality,
                  "quantized": quantize, "backbone": backbone.name, "output": "probabilities",
                  **({"image_size": backbone.image_size, "resize": "short side to size/0.875 and center crop; "
                      "images smaller than size stretched whole", "layout": "NHWC uint8 RGB"}
                     if backbone.modality == "image" else {"max_length": backbone.max_length})}
        graph = write_graph(model, staging / (GRAPH if quantize is None else "fp32.onnx"))
        if quantize == "int8":
            if backbone.modality == "text":
                quantize_dynamic_int8(graph, staging / GRAPH)
            else:
                quantize_static_int8(graph, staging / GRAPH, calibration_batches(backbone, calibration))
            graph.unlink()
        if backbone.modality == "text":
            _save_tokenizer(backbone, staging / TOKENIZER)
        publish_export(staging, out, labels, model)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def publish_export(staging: Path, out: Path, labels: dict, model) -> None:
    """Write ``labels.json`` and the model card into the finished ``staging`` folder, then move it to ``out``.

    ``out`` is replaced whole; ``model`` (a Model or ScratchModel) is what the card describes.
    """
    write_json(staging / LABELS, labels)
    (staging / "README.md").write_text(model_card(model, labels), encoding="utf-8")
    staging.chmod(0o755)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def check_quantization(quantize: str | None) -> None:
    """Raise ModelError unless ``quantize`` is None or ``"int8"``."""
    if quantize not in QUANTIZATIONS:
        raise ModelError(f"unknown quantization {quantize!r}", where="--quantize", fix="give int8, or leave it out")


def check_target(out: Path) -> None:
    """Raise ModelError when ``out`` exists and is neither an export (to replace) nor an empty folder."""
    if out.exists() and not is_exported(out) and (not out.is_dir() or any(out.iterdir())):
        raise ModelError("the output folder exists and is not an export", where=str(out),
                         fix="give a new folder with --out, or remove this one")


def _save_tokenizer(backbone, path: Path) -> None:
    """The fast tokenizer as ``tokenizer.json``, truncating to the backbone's length and padding batches."""
    from tokenizers import Tokenizer

    source = backbone.tokenizer
    tokenizer = Tokenizer.from_str(source.backend_tokenizer.to_str())  # a copy: the backbone's stays as it is
    tokenizer.enable_truncation(backbone.max_length)
    tokenizer.enable_padding(pad_id=source.pad_token_id, pad_token=source.pad_token)
    tokenizer.save(str(path))


def calibration_items(model) -> list[str]:
    """Up to 100 training items, a seeded sample, for static quantization's activation ranges.

    Raises:
        ModelError: the data the model was trained from are not readable where the manifest says.
    """
    manifest, config = model.info.get("manifest", {}), model.info.get("config", {})
    source = manifest.get("data")
    try:
        if not source:
            raise ModelError("the model folder does not say which data it was trained on")
        dataset = assign_splits(read_dataset(source), ratios=config.get("ratios"), seed=config.get("seed", 0))
    except HeadstartError as error:
        raise ModelError(f"int8 needs a calibration sample of the training data, which cannot be read ({error})",
                         where=str(source), fix="put the training data back there, or export without --quantize") \
            from error
    train = dataset.split("train")
    rng = np.random.default_rng(config.get("seed", 0))
    picked = rng.permutation(len(train))[:CALIBRATION_ITEMS]
    return [train.items[i] for i in sorted(picked)]
