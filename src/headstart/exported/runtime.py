"""An exported folder, predicting through ONNX Runtime: what ``headstart.load`` gives for one.

It needs only onnxruntime, tokenizers, numpy and pillow, as ``examples/predict_onnx.py`` does,
and prepares inputs the same way: images are resized with pillow as headstart resizes them for
evaluation (photos to 1/0.875 of the input on the short side and center-cropped, images smaller
than the input stretched whole), texts tokenized by the saved ``tokenizer.json``, or fed raw where
``labels.json`` says ``"text_input": "raw"`` (a TF-IDF model trained from scratch, whose graph
tokenizes itself).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from headstart.data.dataset import MAX_TEXT_CHARS, Dataset, items_of
from headstart.data.images import load_image
from headstart.errors import ModelError, first_line
from headstart.exported.cpu_int8 import EXACT_INT8, needs_exact_int8

FORMAT = "headstart-onnx/1"
GRAPH = "model.onnx"
LABELS = "labels.json"
TOKENIZER = "tokenizer.json"
CROP = 0.875  # as headstart.backbones.image.EvalResize


def session_options(threads: int = 0, *, exact_int8: bool | None = None):
    """ONNX Runtime's options for an exported graph.

    Args:
        threads: intra-op threads (0: every core).
        exact_int8: ONNX Runtime's exact int8 products (:mod:`headstart.exported.cpu_int8`); None: where
            this CPU's fast ones can overflow.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if needs_exact_int8() if exact_int8 is None else exact_int8:
        options.add_session_config_entry(*EXACT_INT8)
    return options


def is_exported(folder: str | Path) -> bool:
    """Whether ``folder`` holds an export (its ``labels.json`` names the export format)."""
    try:
        labels = json.loads((Path(folder) / LABELS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(labels, dict) and labels.get("format") == FORMAT


def resized_for_model(image: Image.Image, size: int, *, whole: bool = False) -> np.ndarray:
    """Uint8 pixels (size, size, 3) of an RGB image, framed as headstart frames images for evaluation.

    ``whole`` stretches every image whole to size x size, as models trained from scratch saw them
    (an export's ``labels.json`` says ``"frame": "whole"``).
    """
    width, height = image.size
    if whole or max(width, height) < size:
        return np.asarray(image.resize((size, size), Image.BILINEAR))
    short = int(round(size / CROP))
    new = (short, int(short * height / width)) if width <= height else (int(short * width / height), short)
    image = image.resize(new, Image.BILINEAR)
    left, top = int(round((new[0] - size) / 2)), int(round((new[1] - size) / 2))
    return np.asarray(image.crop((left, top, left + size, top + size)))


class ExportedModel:
    """A folder written by ``headstart export``: class probabilities from its ONNX graph.

    Args:
        folder: the exported folder (``model.onnx``, ``labels.json``, ``tokenizer.json`` for text).
        threads: ONNX Runtime's intra-op threads (0: its default, every core).
    """

    def __init__(self, folder: str | Path, *, threads: int = 0):
        import onnxruntime as ort

        self.folder = Path(folder)
        if not is_exported(self.folder):
            raise ModelError("not an exported folder (no labels.json of the export format)", where=str(folder),
                             fix="give the folder that `headstart export` wrote")
        self.labels = json.loads((self.folder / LABELS).read_text(encoding="utf-8"))
        self.classes: list[str] = list(self.labels["classes"])
        self.modality: str = self.labels["input"]
        try:
            self.session = ort.InferenceSession(str(self.folder / GRAPH), session_options(threads),
                                                providers=["CPUExecutionProvider"])
            self.raw_text = self.labels.get("text_input") == "raw"
            self.tokenizer = self._tokenizer() if self.modality == "text" and not self.raw_text else None
        except Exception as error:  # noqa: BLE001 - a missing or damaged file, whichever library reads it
            raise ModelError(f"cannot load the export ({first_line(error)})",
                             where=str(folder), fix="export the model again") from error

    def _tokenizer(self):
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.folder / TOKENIZER))

    def inputs(self, items: Sequence[str]) -> dict[str, np.ndarray]:
        """The graph's feed for raw items: texts, token ids and mask, or resized uint8 pixels (n, H, W, 3)."""
        if self.modality == "text" and self.raw_text:
            return {"text": np.array([item[:MAX_TEXT_CHARS] for item in items], dtype=object)}
        if self.modality == "text":
            # Cut as headstart cuts texts: the tokenizer reads a whole text before truncating it.
            encoded = self.tokenizer.encode_batch([item[:MAX_TEXT_CHARS] for item in items])
            return {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64)}
        size, whole = self.labels["image_size"], self.labels.get("frame") == "whole"
        return {"pixels": np.stack([resized_for_model(load_image(path), size, whole=whole) for path in items])}

    def predict_proba(self, data: Dataset | Sequence[str] | str | os.PathLike, *,
                      batch_size: int = 32) -> np.ndarray:
        """Class probabilities (n, len(classes)); ``data`` as for :meth:`headstart.model.Model.predict_proba`."""
        items = items_of(data)
        # Texts of similar length in one batch pad less (1.5x faster on SST-2 here). An int8 text graph
        # quantizes its activations per batch, so examples/predict_onnx.py batches in this same order.
        order = (np.argsort([len(item) for item in items], kind="stable") if self.modality == "text"
                 else np.arange(len(items)))
        proba = np.zeros((len(items), len(self.classes)), dtype=np.float32)
        for start in range(0, len(items), batch_size):
            at = order[start:start + batch_size]
            proba[at] = self.session.run(None, self.inputs([items[i] for i in at]))[0]
        return proba

    def predict(self, data: Dataset | Sequence[str] | str | os.PathLike, **options) -> list[str]:
        """Predicted label names, one per item."""
        return [self.classes[i] for i in self.predict_proba(data, **options).argmax(axis=1)]
