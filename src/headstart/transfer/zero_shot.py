"""A model from class names alone (``headstart fit --zero-shot``): no labels, an ordinary model folder.

The head is :func:`headstart.learn.zero_shot.zero_shot_head`'s (class prototypes as weight rows,
the pool's calibration as biases) over the frozen sentence encoder, so the :class:`Model` predicts,
saves, reports and exports like one a probe made. The calibration reads the unlabeled pool's texts
where one is given, else the test split's texts (never their labels).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from headstart.backbones import backbone_modality, create_backbone
from headstart.data.dataset import Dataset
from headstart.data.sources import read_dataset
from headstart.errors import DataError, ModelError
from headstart.evaluate import classification_metrics
from headstart.features.extract import cached_features, compute_features
from headstart.learn.zero_shot import CALIBRATION, TEMPLATES, parse_classes, parse_descriptions, zero_shot_head
from headstart.model import Model

DEFAULT_TEXT_ENCODER = "minilm-l6"


def check_text_encoder(name: str) -> None:
    """Raise unless ``name`` is a text backbone: zero-shot compares texts with texts.

    Raises:
        ModelError: an image backbone.
    """
    if backbone_modality(name) != "text":
        raise ModelError(f"zero-shot needs a text encoder; '{name}' is an image backbone", where="--backbone",
                         fix=f"use a text backbone, e.g. {DEFAULT_TEXT_ENCODER}")


def _check_text(dataset: Dataset | None, what: str) -> None:
    if dataset is None:
        return
    if dataset.modality != "text":
        raise DataError(f"zero-shot reads text; the {what} holds images", where=dataset.source,
                        fix="give a CSV/TSV/JSONL file with a text column")
    if len(dataset) == 0:
        raise DataError(f"the {what} has no items", where=dataset.source, fix="give a file with at least one text")


def zero_shot_model(classes: str | Sequence[str], *, describe: str | Mapping[str, str] | None = None,
                    test=None, unlabeled=None, backbone: str | None = None, backbone_options: dict | None = None,
                    templates: Sequence[str] = TEMPLATES, calibration: str = CALIBRATION, engine: str = "auto",
                    cache_dir=None, columns: dict | None = None,
                    device: str = "auto") -> tuple[Model, Dataset | None, np.ndarray | None]:
    """The zero-shot model of ``classes``, measured on ``test_set`` where given.

    Args:
        classes: the class names, ``"a,b"`` or a list.
        describe: class -> a short description (``"a=...,b=..."`` or a mapping); others keep their name.
        test: labeled texts (a file or Dataset; labels among ``classes``) to measure it on.
        unlabeled: unlabeled texts like those to predict (a file or Dataset), to calibrate on (default:
            the test file's texts).
        backbone: a text backbone (default ``minilm-l6``).
        backbone_options: ``create_backbone`` options (``max_length``).
        templates: format strings with one ``{}``, averaged (see :func:`headstart.learn.zero_shot.zero_shot_head`).
        calibration: ``standardize``, ``center`` or ``none`` (ditto).
        engine: where features are computed (``auto``, ``onnx``, ``torch``).
        cache_dir: the features cache.
        columns: column names of the files (``text_column``, ``label_column``).
        device: where the model predicts.

    Returns:
        The model (its ``info`` holds config and test metrics), the test set and the model's probabilities
        on it (None, None without a labeled test).

    Raises:
        DataError: bad classes or descriptions, image data, an empty file, test labels not among the classes.
        ModelError: an image backbone.
    """
    names = parse_classes(classes)
    descriptions = parse_descriptions(describe, names)
    name = backbone or DEFAULT_TEXT_ENCODER
    check_text_encoder(name)
    test_set, pool = _read(test, columns, require_labels=True), _read(unlabeled, columns, require_labels=False)
    _check_text(test_set, "test file")
    _check_text(pool, "unlabeled pool")
    if test_set is not None and test_set.labels:
        unknown = sorted(set(test_set.labels) - set(names))
        if unknown:
            raise DataError(f"the test file has labels that are not among the classes: {', '.join(unknown[:5])}",
                            where=test_set.source, fix="name every label of the test file in --classes")
    options = dict(backbone_options or {})
    net = create_backbone(name, **options)
    calibrate_on = pool if pool is not None else test_set
    pool_features = None if calibrate_on is None else cached_features(
        net, calibrate_on.items, calibrate_on.hashes, engine=engine, cache_dir=cache_dir)

    def embed(texts: list[str]) -> np.ndarray:
        return compute_features(net, texts, engine=engine, cache_dir=cache_dir, description="class descriptions")

    made = zero_shot_head(embed, names, descriptions, pool_features, templates=templates, calibration=calibration)
    model = Model(net, made.head, names, backbone_options=options, finetuned=False, device=device)
    record = {**made.record(), "calibrated_on_source": None if calibrate_on is None else
              ("unlabeled pool" if pool is not None else "test texts (not their labels)"),
              "cosine": bool(getattr(net.module, "normalize", False))}
    counts = {"train": 0, "val": 0, "test": 0 if test_set is None else len(test_set),
              "pool": 0 if pool is None else len(pool)}
    config = {"mode": "zero-shot", "requested_mode": "zero-shot", "zero_shot": record, "counts": counts, "seed": None}
    proba, metrics = None, {}
    if test_set is not None and test_set.labels:
        proba = model.predict_proba(test_set, engine=engine, cache_dir=cache_dir)
        metrics = classification_metrics(test_set.label_ids(names), proba, names)
    model.info = {"config": config, "metrics": metrics, "history": [],
                  "manifest": {"data": None if test_set is None else test_set.source,
                               "pool": None if pool is None else pool.source}}
    return model, (test_set if proba is not None else None), proba


def _read(data, columns: dict | None, *, require_labels: bool) -> Dataset | None:
    if data is None or isinstance(data, Dataset):
        return data
    return read_dataset(data, require_labels=require_labels, **(columns or {}))


def report_lines(record: Mapping) -> list[str]:
    """The report's notes on a zero-shot model: that no label was used, and the descriptions and calibration."""
    described = "; ".join(f"{name}: \u201c{text}\u201d" for name, text in record.get("descriptions", {}).items())
    templates = ", ".join(f"\u201c{t}\u201d" for t in record.get("templates", []))
    lines = ["Zero-shot: no labels were used. Each class is the sentence encoder's embedding of its description, "
             f"averaged over the templates {templates}; an item goes to the class it is most similar to.",
             f"Class descriptions: {described}."]
    if record.get("calibration", "none") == "none":
        lines.append("Uncalibrated: no unlabeled texts were given, so one class may win most items.")
    else:
        lines.append(f"Calibrated ({record['calibration']}) on the similarities of {record['calibrated_on']} "
                     f"{record.get('calibrated_on_source') or 'texts'}, temperature {record['temperature']:g}.")
    if not record.get("cosine", True):
        lines.append("This encoder does not normalize its features: the scores are dot products, not cosines.")
    return lines
