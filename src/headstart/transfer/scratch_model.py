"""A model trained from scratch as a folder, shipped by ``fit(mode="auto")`` when it beat transfer.

It answers as :class:`headstart.model.Model` does (``classes``, ``modality``, ``metrics``,
``predict_proba``, ``predict``, ``save``, ``export``) and its folder loads with ``headstart.load``.
The folder holds ``config.json`` (format ``headstart-scratch/1``, classes, what the model is and the
transfer run's settings), ``scratch.json`` (the model's settings: a network's shape, or TF-IDF
vocabularies), ``scratch.safetensors`` (its weights), ``labels.json``, ``metrics.json``,
``history.json``, ``manifest.json`` and the report: data and arrays, no pickle.

An image model (a :class:`~headstart.transfer.scratch_models.ImagePredictor` network) exports to one
ONNX graph taking uint8 pixels (n, H, W, 3) as other image exports do, every image stretched whole
(``labels.json``: ``"frame": "whole"``). A text model (TF-IDF + logistic regression) exports to one
graph over raw texts (:mod:`headstart.exported.text_tfidf_graph`; ``labels.json``: ``"text_input":
"raw"``, no tokenizer.json), checked against the Python model; a text model saved before its
analyzers became exportable (scikit-learn's ``char_wb``) is refused: fit it again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from headstart.data.dataset import Dataset, items_of
from headstart.errors import ModelError, first_line
from headstart.model import SCRATCH_FORMAT, read_json, staged_folder, write_record
from headstart.output import write_json
from headstart.transfer.scratch_models import ImagePredictor, TextPredictor

SETTINGS, WEIGHTS = "scratch.json", "scratch.safetensors"
PARITY_TOLERANCE = 1e-4
_AGAIN = "copy the whole model folder again, or fit the model again"


def is_scratch(folder: str | Path) -> bool:
    """Whether ``folder`` holds a model trained from scratch (its config.json names the format)."""
    try:
        config = read_json(Path(folder) / "config.json", None)
    except ModelError:
        return False
    return isinstance(config, dict) and config.get("format") == SCRATCH_FORMAT


class ScratchModel:
    """A model trained from scratch on the task's labels: predicts, saves, loads and exports like a Model.

    Args:
        predictor: the fitted model (``predict_proba(items)``, ``state()``).
        classes: label names, in the output order.
        name: the candidate's short name (``pixel-lr``, ``tfidf-words-chars``...).
        method: what it is, in words.
        info: config, metrics, history and manifest, as written to the folder.
    """

    def __init__(self, predictor: ImagePredictor | TextPredictor, classes: Sequence[str], *, name: str, method: str,
                 info: dict | None = None):
        self.predictor = predictor
        self.classes = list(classes)
        self.name, self.method = name, method
        self.info = info or {}

    @property
    def modality(self) -> str:
        """``"text"`` or ``"image"``: what the model reads."""
        return self.predictor.modality

    @property
    def metrics(self) -> dict:
        """Test-split metrics, with the comparison with transfer under ``baseline``."""
        return self.info.get("metrics", {})

    @property
    def summary(self) -> str:
        """What the model is, for the model card."""
        return f"{self.method}, trained from scratch on its labels (no pretrained backbone)"

    def predict_proba(self, data: Dataset | Sequence[str] | str | os.PathLike, **_options) -> np.ndarray:
        """Class probabilities (n, len(classes)); ``data`` as for :meth:`headstart.model.Model.predict_proba`.

        Options for a backbone's forward passes (``engine``, ``cache_dir``) are accepted and unused.
        """
        return self.predictor.predict_proba(items_of(data))

    def predict(self, data: Dataset | Sequence[str] | str | os.PathLike, **options) -> list[str]:
        """Predicted label names, one per item."""
        return [self.classes[i] for i in self.predict_proba(data, **options).argmax(axis=1)]

    # -- the folder --------------------------------------------------------------------------

    def save(self, folder: str | Path, *, extra_files: dict[str, str] | None = None) -> Path:
        """Write the model folder (through a temporary folder, as :meth:`headstart.model.Model.save`)."""
        folder = Path(folder)
        with staged_folder(folder) as staging:
            settings, tensors = self.predictor.state()
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(staging / WEIGHTS))
            write_json(staging / SETTINGS, settings)
            config = {**self.info.get("config", {}), "format": SCRATCH_FORMAT, "modality": self.modality,
                      "classes": self.classes, "scratch": {"name": self.name, "method": self.method}}
            write_record(staging, config, self.classes, self.info, extra_files)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "ScratchModel":
        """Load a folder written by :meth:`save`.

        Raises:
            ModelError: it is not such a folder, or a file is missing or damaged.
        """
        folder = Path(folder)
        config = read_json(folder / "config.json", None)
        if not isinstance(config, dict) or config.get("format") != SCRATCH_FORMAT:
            raise ModelError("not a folder of a model trained from scratch", where=str(folder),
                             fix="give the folder that `headstart fit --out` wrote")
        scratch, classes = config.get("scratch"), config.get("classes")
        settings = read_json(folder / SETTINGS, None)
        if not isinstance(scratch, dict) or not isinstance(classes, list) or not isinstance(settings, dict):
            raise ModelError("its config or settings are incomplete", where=str(folder), fix=_AGAIN)
        try:
            tensors = load_file(str(folder / WEIGHTS))
        except (SafetensorError, OSError) as error:
            raise ModelError(f"cannot read the weights ({first_line(error)})", where=str(folder / WEIGHTS),
                             fix=_AGAIN) from error
        kind = TextPredictor if config.get("modality") == "text" else ImagePredictor
        try:
            predictor = kind.from_state(settings, tensors)
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise ModelError(f"the weights do not fit the settings ({first_line(error)})", where=str(folder),
                             fix=_AGAIN) from error
        info = {"config": config, "metrics": read_json(folder / "metrics.json", {}),
                "history": read_json(folder / "history.json", []),
                "manifest": read_json(folder / "manifest.json", {})}
        return cls(predictor, classes, name=scratch.get("name", "scratch"), method=scratch.get("method", "scratch"),
                   info=info)

    # -- export ------------------------------------------------------------------------------

    def export(self, out: str | Path, *, quantize: str | None = None) -> Path:
        """Write the model as an exported folder (``model.onnx``, ``labels.json``, a model card).

        Raises:
            ModelError: a text model saved with scikit-learn's own analyzers, a quantization asked for
                (these models are small already), or ``out`` is something else than an export.
        """
        from headstart.exported.folder import check_quantization, check_target, publish_export
        from headstart.exported.runtime import FORMAT, GRAPH

        check_quantization(quantize)
        if self.modality == "text" and self.predictor.graph_blocks() is None:
            raise ModelError("this text model trained from scratch uses scikit-learn's character n-grams, which "
                             "ONNX cannot reproduce", where="headstart export",
                             fix="fit it again with this version of headstart, then export")
        if quantize:
            raise ModelError("int8 is for backbone models; a model trained from scratch is small already",
                             where="--quantize", fix="export without --quantize")
        out = Path(out)
        check_target(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            if self.modality == "text":  # no tokenizer.json: the graph reads raw texts
                labels = {"format": FORMAT, "name": out.name, "classes": self.classes, "input": "text",
                          "text_input": "raw", "quantized": None, "backbone": None, "scratch": self.name,
                          "output": "probabilities", "inputs": "text: a string tensor (n,) of raw texts"}
                _write_text_graph(self.predictor, staging / GRAPH)
            else:
                labels = _write_image_export(self.predictor.net, staging / GRAPH)
                labels = {"format": FORMAT, "name": out.name, "classes": self.classes, "scratch": self.name, **labels}
            publish_export(staging, out, labels, self)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return out


PARITY_TEXTS = ["", "   ", "a", "Hello, World!", "tabs\tand\nnew\r\nlines  and   runs", "café naïve ÉCOLE Straße",
                "emoji 😀👍🏽 and 中文字符", "_under_score 123 4.5e6", "x" * 3000 + " end"]


def _write_text_graph(predictor: TextPredictor, path: Path) -> None:
    """The TF-IDF model as one ONNX graph over raw texts, checked against the Python model on awkward texts."""
    import onnxruntime as ort

    from headstart.exported.text_tfidf_graph import build_graph

    model = build_graph(predictor.graph_blocks(), predictor.weight, predictor.bias)
    path.write_bytes(model.SerializeToString())
    vocabulary = [key for block in predictor.vocabularies() for key in block[:200]]
    texts = PARITY_TEXTS + [" ".join(vocabulary[i::7][:60]) for i in range(7)]
    expected = predictor.predict_proba(texts)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"text": np.array(texts, dtype=object)})[0]
    if np.abs(got - expected).max() > PARITY_TOLERANCE:
        raise ModelError(f"its ONNX graph differs from the Python model by {np.abs(got - expected).max():.2g}",
                         where="headstart export", fix="use the model folder through headstart")


def _write_image_export(net, path: Path) -> dict:
    """Write the image network's graph; return what labels.json says of its input."""
    size = net.settings["size"]
    _write_graph(net, size, path)
    return {"input": "image", "quantized": None, "backbone": None, "output": "probabilities", "image_size": size,
            "frame": "whole", "resize": "every image stretched whole to size x size", "layout": "NHWC uint8 RGB"}


def _write_graph(net, size: int, path: Path) -> None:
    """The network with a softmax as one ONNX graph, uint8 pixels (n, size, size, 3) in, checked against torch."""
    import warnings

    import onnxruntime as ort
    import torch

    class Softmaxed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, pixels):
            return torch.softmax(self.net(pixels), dim=1)

    module = Softmaxed().eval()
    ramp = torch.arange(size * size * 3, dtype=torch.int64).remainder(256).to(torch.uint8)
    example = torch.stack([ramp, ramp.flip(0)]).view(2, size, size, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes about constants
        torch.onnx.export(module, (example,), str(path), input_names=["pixels"], output_names=["probabilities"],
                          dynamic_axes={"pixels": {0: "batch"}, "probabilities": {0: "batch"}}, opset_version=17,
                          dynamo=False)
    with torch.inference_mode():
        expected = module(example).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"pixels": example.numpy()})[0]
    if np.abs(got - expected).max() > PARITY_TOLERANCE:
        raise ModelError(f"its ONNX graph differs from PyTorch by {np.abs(got - expected).max():.2g}",
                         where="headstart export", fix="use the model folder through headstart")
