"""A trained model as a folder: safetensors weights, config, labels, metrics and a manifest.

The folder loads without the training code or pickles: the backbone is
rebuilt from its registry name (a backbone from a local folder is copied
into the model folder, see :mod:`headstart.backbones.portable`), fine-tuned
weights come from ``backbone/`` in their own library's layout (:mod:`headstart.backbones.layouts`)
and the head from ``head.safetensors``.
"""

from __future__ import annotations

from contextlib import contextmanager
import json
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Sequence

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy, save_file as save_numpy

from headstart.backbones import Backbone, create_backbone
from headstart.backbones.layouts import load_weights, save_weights, weights_missing
from headstart.backbones.portable import bundle, local_folder, resolve
from headstart.compute.device import check_device, using_device
from headstart.data.dataset import Dataset, items_of
from headstart.data.sources import shown
from headstart.errors import ModelError, first_line
from headstart.features.extract import cached_features, compute_features
from headstart.learn.head import LinearHead
from headstart.output import write_json

FORMAT = "headstart-model/1"
SCRATCH_FORMAT = "headstart-scratch/1"  # headstart.transfer.scratch_model's folders
VERSIONED = ("headstart", "torch", "transformers", "sentence-transformers", "timm", "scikit-learn", "onnxruntime",
             "numpy", "safetensors")


def library_versions() -> dict[str, str]:
    """Python's and the installed libraries' versions, for the model folder's manifest."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


class Model:
    """A backbone with a linear head over its features; predicts class probabilities.

    Args:
        backbone: the (possibly fine-tuned) backbone.
        head: the linear head over the backbone's features.
        classes: label names, in the head's output order.
        backbone_options: what ``create_backbone`` needs besides the name (image_size, mirror, max_length).
        finetuned: whether the backbone's weights differ from the registry's (then they are saved).
        info: config, metrics, history and manifest, as written to the folder.
        device: where it predicts: ``auto`` (a GPU where torch sees one), ``cpu``, ``cuda`` or ``cuda:N``.
    """

    def __init__(self, backbone: Backbone, head: LinearHead, classes: Sequence[str], *,
                 backbone_options: dict | None = None, finetuned: bool = False, info: dict | None = None,
                 device: str = "auto"):
        self.device = check_device(device)
        self.backbone = backbone
        self.head = head
        self.classes = list(classes)
        self.backbone_options = dict(backbone_options or {})
        self.finetuned = finetuned
        self.info = info or {}

    @property
    def metrics(self) -> dict:
        """Test-split metrics (``accuracy``, ``macro_f1``, ...), empty before evaluation."""
        return self.info.get("metrics", {})

    @property
    def modality(self) -> str:
        """``"text"`` or ``"image"``: what the model reads."""
        return self.backbone.modality

    @property
    def sees_mirror_images(self) -> bool:
        """Whether predictions average each image's features with its mirror image's.

        True for image models fine-tuned here, whose training flipped images at random, so that
        the mirror is as valid a view as the image: averaging the two gains a little accuracy for
        twice the prediction time (benchmarks/README.md). Off where the backbone was built with
        ``mirror=False``, which also kept training from flipping.
        """
        return self.finetuned and self.backbone.modality == "image" and self.backbone.mirror

    def features(self, data: Dataset | Sequence[str] | str | os.PathLike, *, engine: str = "auto",
                 cache_dir: str | Path | None = None, device: str | None = None) -> np.ndarray:
        """Backbone features (n, d) of ``data``: a Dataset, a list of texts or image paths, or one of them.

        A frozen backbone's features of a Dataset go through the on-disk cache; a fine-tuned image
        model's average each image with its mirror (:attr:`sees_mirror_images`). They are computed on
        ``device`` (None: the model's :attr:`device`).
        """
        with using_device(device or self.device):
            return self._features(data, engine=engine, cache_dir=cache_dir)

    def _features(self, data, *, engine: str, cache_dir: str | Path | None) -> np.ndarray:
        dataset = data if isinstance(data, Dataset) else None
        items = items_of(data)
        if dataset is not None and not self.finetuned:
            return cached_features(self.backbone, items, dataset.hashes, engine=engine, cache_dir=cache_dir)
        features = compute_features(self.backbone, items, engine=engine, cache_dir=cache_dir, description="predicting")
        if self.sees_mirror_images:
            features += compute_features(self.backbone, items, engine=engine, cache_dir=cache_dir,
                                         description="predicting, mirrored", view=self.backbone.mirrored)
            features /= 2
        return features

    def predict_proba(self, data: Dataset | Sequence[str] | str | os.PathLike, **options) -> np.ndarray:
        """Class probabilities, shape (n, len(classes)), columns in :attr:`classes` order.

        ``data`` is a Dataset, a list of texts / image paths, or one text or image path (a ``str`` or
        ``Path``), which is one item: its probabilities come as shape (1, len(classes)), as
        scikit-learn's estimators answer one sample.
        """
        return self.head.proba(self.features(data, **options))

    def predict(self, data: Dataset | Sequence[str] | str | os.PathLike, **options) -> list[str]:
        """Predicted label names, length n; one text or image path gives a list of one label."""
        return [self.classes[i] for i in self.predict_proba(data, **options).argmax(axis=1)]

    def export(self, out: str | Path, *, quantize: str | None = None) -> Path:
        """Write the model as one ONNX graph with its labels, tokenizer and model card (``headstart export``).

        ``headstart.load(out)`` reads the folder back and predicts through ONNX Runtime; so does
        ``examples/predict_onnx.py``, without headstart.

        Args:
            out: the folder to write; an exported folder there is replaced.
            quantize: None (fp32) or ``"int8"`` (see :func:`headstart.exported.export_model`).

        Returns:
            ``out`` as a Path.
        """
        from headstart.exported import export_model

        return export_model(self, out, quantize=quantize)

    # -- the folder --------------------------------------------------------------------------

    def save(self, folder: str | Path, *, extra_files: dict[str, str] | None = None) -> Path:
        """Write the model folder and return its path.

        Everything is written to a temporary folder beside it and then moved into place, so an
        interrupted save never leaves a half-written model.

        Args:
            folder: the model folder; an existing model folder there is replaced.
            extra_files: more files to write into it, name -> text (the HTML report, say).

        Raises:
            ModelError: ``folder`` exists and is not a headstart model folder.
        """
        folder = Path(folder)
        with staged_folder(folder) as staging:
            save_numpy({"weight": self.head.weight, "bias": self.head.bias}, str(staging / "head.safetensors"))
            if self.finetuned or not self.backbone.pretrained:  # weights the registry cannot rebuild
                name = save_weights(self.backbone, staging)
            else:  # a backbone from a local folder is copied in: the folder must load where that one is not
                name = bundle(self.backbone.name, staging)
            described = {**self.backbone.describe(), "name": name}
            if name != self.backbone.name:
                described["source"] = name.partition(":")[2]  # not this machine's path
                if local_folder(self.backbone.name) is None:  # a registry name or hub id: where the weights began
                    described["finetuned_from"] = self.backbone.name
            config = {"format": FORMAT, "modality": self.backbone.modality, "classes": self.classes,
                      "finetuned": self.finetuned,
                      "backbone": {"name": name, "options": self.backbone_options, **described},
                      **self.info.get("config", {})}
            write_record(staging, config, self.classes, self.info, extra_files)
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "auto") -> "Model":
        """Load a model folder written by :meth:`save`, to predict on ``device`` (see :class:`Model`).

        Raises:
            ModelError: the folder is not a headstart model folder, is of an unknown format, or
                its config, labels or weights are missing, damaged or do not fit together.
        """
        folder = Path(folder)
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise ModelError("not a headstart model folder (no config.json)", where=str(folder),
                             fix="give the folder that `headstart fit --out` wrote")
        config = read_json(config_path, None)
        if isinstance(config, dict) and config.get("format") == SCRATCH_FORMAT:
            raise ModelError("a model trained from scratch, not one of a backbone", where=str(folder),
                             fix="load it with headstart.load")
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            found = config.get("format") if isinstance(config, dict) else config
            raise ModelError(f"unknown model format {shown(found)}", where=str(config_path),
                             fix=f"this headstart reads {FORMAT}")
        name, options, pretrained, finetuned, classes = _backbone_config(config, config_path)
        # The head first: a damaged folder is found before the backbone's seconds of loading.
        head = _load_head(folder / "head.safetensors", len(classes))
        if not pretrained:
            options = {**options, "pretrained": False}
        own_weights = finetuned or not pretrained
        if own_weights and (missing := weights_missing(folder)) is not None:
            raise ModelError("the fine-tuned weights are missing", where=str(missing),
                             fix="copy the whole model folder")
        # A timm network with weights of its own is built without the hub's, which would be downloaded
        # only to be replaced (and could not be, offline).
        hub_weights = {"pretrained": False} if own_weights and name.startswith("timm:") else {}
        backbone = create_backbone(resolve(name, folder), **{**options, **hub_weights})
        if own_weights:
            load_weights(backbone, folder)
            backbone.module.eval()
            backbone.pretrained = pretrained  # tuned from pretrained weights, or a random initialization
        info = {"config": config, "metrics": read_json(folder / "metrics.json", {}),
                "history": read_json(folder / "history.json", []),
                "manifest": read_json(folder / "manifest.json", {})}
        return cls(backbone, head, classes, backbone_options=options, finetuned=finetuned, info=info, device=device)


_COPY_AGAIN = "copy the whole model folder again, or fit the model again"


def read_json(path: Path, default):
    """The JSON in a model folder's file ``path``, or ``default`` when there is no such file.

    Raises:
        ModelError: the file is not UTF-8 JSON (truncated, overwritten, nested past Python's limit).
    """
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(error, RecursionError) else first_line(error)
        raise ModelError(f"not readable JSON ({reason})", where=str(path), fix=_COPY_AGAIN) from error


def _backbone_config(config: dict, path: Path) -> tuple[str, dict, bool, bool, list[str]]:
    """(backbone name, backbone options, pretrained, finetuned, classes) from a model's config.json.

    Raises:
        ModelError: a field is missing or of the wrong type, naming it.
    """
    backbone = config.get("backbone")
    backbone = backbone if isinstance(backbone, dict) else {}
    fields = {"backbone.name": (backbone.get("name"), str),
              "backbone.options": (backbone.get("options", {}), dict),
              "backbone.pretrained": (backbone.get("pretrained", True), bool),
              "finetuned": (config.get("finetuned"), bool),
              "classes": (config.get("classes"), list)}
    for field, (value, kind) in fields.items():
        if not isinstance(value, kind):
            raise ModelError(f"field '{field}' is {shown(value)}, expected a {kind.__name__}", where=str(path),
                             fix=_COPY_AGAIN)
    classes = fields["classes"][0]
    if len(classes) < 2 or not all(isinstance(name, str) for name in classes):
        raise ModelError(f"field 'classes' is {shown(classes)}, expected two or more label names",
                         where=str(path), fix=_COPY_AGAIN)
    return tuple(value for value, _ in fields.values())  # type: ignore[return-value]


def _load_head(path: Path, n_classes: int) -> LinearHead:
    """The linear head in ``head.safetensors``, checked against the number of classes.

    Raises:
        ModelError: the file is missing, truncated, or holds no head of ``n_classes`` rows.
    """
    if not path.is_file():
        raise ModelError("the head weights are missing", where=str(path), fix="copy the whole model folder")
    try:
        tensors = load_numpy(str(path))
    except (SafetensorError, OSError) as error:
        raise ModelError(f"cannot read the head weights ({first_line(error)})", where=str(path),
                         fix=_COPY_AGAIN) from error
    weight, bias = tensors.get("weight"), tensors.get("bias")
    if weight is None or bias is None or weight.ndim != 2 or bias.shape != (len(weight),) \
            or len(weight) != n_classes:
        raise ModelError(f"the head does not fit the model's {n_classes} classes", where=str(path),
                         fix=_COPY_AGAIN)
    return LinearHead(weight, bias)


@contextmanager
def staged_folder(folder: Path):
    """A temporary folder beside ``folder`` to write into; published as ``folder`` when the block ends well.

    On any error (or an interrupt) the temporary folder is removed and ``folder`` is left as it was.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        yield staging
        publish_folder(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_record(staging: Path, config: dict, classes: list[str], info: dict,
                 extra_files: dict[str, str] | None = None) -> None:
    """Write what every model folder holds besides its weights into ``staging``.

    ``config.json``, ``labels.json``, ``metrics.json``, ``history.json``, ``manifest.json`` (when it
    was made, with which libraries, from which data) and ``extra_files`` (name -> text).
    """
    write_json(staging / "config.json", config)
    write_json(staging / "labels.json", classes)
    write_json(staging / "metrics.json", info.get("metrics", {}))
    write_json(staging / "history.json", info.get("history", []))
    write_json(staging / "manifest.json", {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                           "versions": library_versions(), **info.get("manifest", {})})
    for name, text in (extra_files or {}).items():
        (staging / name).write_text(text, encoding="utf-8")


def publish_folder(staging: Path, folder: Path) -> None:
    """Make the complete ``staging`` folder readable by all and move it to ``folder`` (see :func:`_replace_folder`)."""
    # mkdtemp makes a private folder; a model folder is meant to be shared like any output.
    staging.chmod(0o755)
    for path in staging.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    _replace_folder(staging, folder)


def _replace_folder(staging: Path, folder: Path) -> None:
    """Move ``staging`` to ``folder``; an existing model folder is replaced only once the new one is complete."""
    if folder.exists():
        if not folder.is_dir() or (not (folder / "config.json").is_file() and any(folder.iterdir())):
            raise ModelError("the output folder exists and is not a headstart model", where=str(folder),
                             fix="choose another --out folder, or empty this one")
        retired = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        os.replace(folder, retired)
        os.replace(staging, folder)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, folder)
