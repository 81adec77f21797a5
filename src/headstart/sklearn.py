"""headstart as a scikit-learn classifier, for pipelines, grid searches and cross-validation.

Example:
    from sklearn.model_selection import cross_val_score
    from headstart.sklearn import HeadstartClassifier

    texts, labels = ["great product", "broke in a day", ...], ["pos", "neg", ...]
    scores = cross_val_score(HeadstartClassifier(mode="probe"), texts, labels, cv=5)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from headstart.backbones import backbone_modality, backbone_name_for, backbone_options, create_backbone
from headstart.compute.device import using_device
from headstart.data import IMAGE, TEXT, Dataset, assign_splits
from headstart.data.dataset import file_hash, text_hash
from headstart.data.images import is_image_file
from headstart.errors import DataError
from headstart.learn.config import FinetuneConfig, check_mode
from headstart.learn.finetune import seed_everything
from headstart.learn.trainer import train
from headstart.model import Model


class InputError(DataError, ValueError):
    """Bad ``X`` or ``y``: a :class:`~headstart.errors.DataError`, and the ValueError scikit-learn expects."""


class HeadstartClassifier(ClassifierMixin, BaseEstimator):
    """A pretrained backbone with a linear head, probed or fine-tuned by ``fit(X, y)``.

    ``X`` is one-dimensional: texts, or paths of image files (a list, a 1-D array, a pandas Series,
    or a one-column 2-D array or DataFrame). The modality is the backbone's, or, with no backbone
    given, images when every item is an existing image file and text otherwise. ``y`` holds the
    labels, of any type ``numpy.unique`` sorts; :attr:`classes_` is that sorted order, and
    ``predict_proba``'s columns follow it. ``fit`` holds out ``validation_fraction`` of each class
    to choose the probe's strength, the fine-tune's epoch and (``mode="auto"``) probe or fine-tune,
    then refits on every item, as ``headstart.fit`` does; it does not evaluate (score the model with
    ``score`` or ``cross_val_score`` on data of your own).

    Parameters are only stored by the constructor; those shared with :func:`headstart.fit` mean
    the same there (``auto_unfreeze`` is not offered: give ``finetune_config`` an ``unfreeze`` depth).

    Args:
        backbone: a registry name (default: ``minilm-l6`` for text, ``effnet-lite0`` for images).
        mode: ``probe``, ``finetune`` or ``auto``.
        seed: seeds the validation split, the probe and fine-tuning.
        validation_fraction: the share of each class held out for the choices above (at least one item).
        image_size: the side of images fed to an image backbone (default: the backbone's).
        max_length: tokens per text for a text backbone (default: the backbone's).
        finetune_config: settings of the fine-tune (see :class:`~headstart.learn.config.FinetuneConfig`).
        engine: ``auto``/``onnx``/``torch``: where frozen forward passes run.
        cache_dir: the features cache (default ``$HEADSTART_CACHE`` or ``~/.cache/headstart``).
        mirror: whether an image's left-right mirror shows the same class.
        device: where features and fine-tuning run: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        zero_shot_prior: text with few labels: blend the probe with the class names' zero-shot head where
            that lowers its out-of-fold log-loss (:mod:`headstart.learn.prior`).
        describe: short class descriptions for that prior (``"a=...,b=..."`` or a mapping of the labels as
            text; default: the labels themselves).

    Attributes:
        classes_: the labels, sorted (``numpy.unique`` of ``y``).
        model_: the fitted :class:`~headstart.model.Model`, to save with ``model_.save(folder)``.

    There is no ``n_features_in_``: the inputs are texts or image files, not feature columns.
    Of ``sklearn.utils.estimator_checks``, those that need no fit apply and pass
    (``check_get_params_invariance``, ``check_set_params``, ``check_parameters_default_constructible``,
    ``check_no_attributes_set_in_init``, ``check_estimators_unfitted``, ``check_estimator_cloneable``,
    ``check_estimator_repr``, ``check_do_not_raise_errors_in_init_or_set_params``, ``check_mixin_order``,
    ``check_valid_tag_types``). The others fit on random numeric matrices, which are not texts or
    images (the estimator's tags say it takes strings, one-dimensional), so ``check_estimator`` skips
    this estimator; what those checks assert (``fit`` returns self, leaves its parameters as they
    were and sets only attributes ending in ``_``, predictions are of ``classes_``, a single class is
    a ValueError) is tested on texts in ``tests/test_sklearn.py``.
    """

    def __init__(self, backbone: str | None = None, mode: str = "auto", seed: int = 0,
                 validation_fraction: float = 0.2, image_size: int | None = None, max_length: int | None = None,
                 finetune_config: FinetuneConfig | None = None, engine: str = "auto",
                 cache_dir: str | Path | None = None, mirror: bool = True, device: str = "auto",
                 zero_shot_prior: bool = True, describe: str | dict | None = None):
        self.backbone = backbone
        self.mode = mode
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.image_size = image_size
        self.max_length = max_length
        self.finetune_config = finetune_config
        self.engine = engine
        self.cache_dir = cache_dir
        self.device = device
        self.mirror = mirror
        self.zero_shot_prior = zero_shot_prior
        self.describe = describe

    def __sklearn_tags__(self):
        """One-dimensional input of strings (texts or image paths), no numeric matrices."""
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    def fit(self, X, y) -> "HeadstartClassifier":
        """Train on texts or image paths ``X`` with labels ``y``; returns self.

        Raises:
            InputError: ``X`` is not one-dimensional, holds an empty text, a missing image file or a
                non-string, ``y`` is of another length or not class labels, or has one class.
            HeadstartError: a bad ``mode``, an unknown backbone or one of the other modality.
        """
        check_mode(self.mode)
        if not 0 < self.validation_fraction < 1:
            raise InputError(f"validation_fraction is {self.validation_fraction!r}", where="HeadstartClassifier",
                             fix="give a share between 0 and 1, such as 0.2")
        items = _items(X)
        labels = _labels(y, len(items))
        classes = np.unique(labels)
        names = [str(label) for label in classes]
        if len(set(names)) < len(names):
            raise InputError("two labels of y read the same as text", where="y",
                             fix="give labels whose str() differ")
        dataset = self._dataset(items, [str(label) for label in labels])
        train_set, val_set = dataset.split("train"), dataset.split("val")
        seed_everything(self.seed)
        options = backbone_options(self.image_size, self.max_length, self.mirror)
        net = create_backbone(backbone_name_for(dataset.modality, self.backbone), **options)
        with using_device(self.device):
            result = train(net, train_set, val_set, sorted(names), mode=self.mode, config=self.finetune_config,
                           seed=self.seed, engine=self.engine, cache_dir=self.cache_dir,
                           zero_shot_prior=self.zero_shot_prior, describe=self.describe)
        self.model_ = Model(net, result.head, sorted(names), backbone_options=options, finetuned=result.finetuned,
                            info={"config": {**result.config, "seed": self.seed}}, device=self.device)
        self.classes_ = classes
        # The model's columns are its label names in text order; classes_ is numpy's order (2 < 10).
        self._columns = [self.model_.classes.index(name) for name in names]
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n, len(classes_)), columns in :attr:`classes_` order."""
        check_is_fitted(self)
        proba = self.model_.predict_proba(_items(X), engine=self.engine, cache_dir=self.cache_dir)
        return proba[:, self._columns]

    def predict(self, X) -> np.ndarray:
        """The most probable class of each item, of :attr:`classes_`'s type."""
        proba = self.predict_proba(X)  # first: it raises NotFittedError before classes_ exists
        return self.classes_[proba.argmax(axis=1)]

    def _dataset(self, items: list[str], labels: list[str]) -> Dataset:
        """The labeled items, split into train and validation by class."""
        modality = backbone_modality(self.backbone) if self.backbone else _guess_modality(items)
        if modality == IMAGE:
            missing = next((i for i, item in enumerate(items) if not Path(item).is_file()), None)
            if missing is not None:
                raise InputError(f"no image file at '{items[missing]}'", where=f"X[{missing}]",
                                 fix="give paths of image files (or a text backbone for texts)")
        hashes = [file_hash(item) if modality == IMAGE else text_hash(item) for item in items]
        dataset = Dataset(modality, items, hashes, labels=labels, origins=[f"X[{i}]" for i in range(len(items))],
                          source="X")
        return assign_splits(dataset, ratios=(1 - self.validation_fraction, self.validation_fraction, 0.0),
                             seed=self.seed)


def _items(X) -> list[str]:
    """The texts or image paths of ``X`` as strings, checked: one-dimensional, strings, no empty one."""
    if isinstance(X, (str, os.PathLike)):
        raise InputError("X is one string; scikit-learn estimators take a sequence of samples", where="X",
                         fix="give a list of texts or image paths, such as [text]")
    values = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else list(X), dtype=object)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise InputError(f"X has shape {values.shape}; it must be one-dimensional", where="X",
                         fix="give one text or image path a sample, not a matrix of features")
    items = []
    for i, value in enumerate(values):
        if not isinstance(value, (str, os.PathLike)):
            raise InputError(f"{type(value).__name__} {value!r:.40} is not a text or an image path", where=f"X[{i}]",
                             fix="give texts or image paths")
        item = os.fspath(value)
        if not item.strip():
            raise InputError("the text is empty", where=f"X[{i}]", fix="remove the sample or give it a text")
        items.append(item)
    return items


def _labels(y, n_items: int) -> np.ndarray:
    """``y`` as a 1-D array of class labels, as long as ``X``."""
    labels = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if labels.ndim != 1 or len(labels) != n_items:
        raise InputError(f"y has shape {labels.shape}, X has {n_items} samples", where="y",
                         fix="give one label a sample")
    check_classification_targets(labels)
    if len(np.unique(labels)) < 2:
        raise InputError(f"only one class ({labels[0]!r}) in y; a classifier needs at least two", where="y",
                         fix="add samples of another class")
    return labels


def _guess_modality(items: list[str]) -> str:
    """Images when every item is an existing image file, else text."""
    return IMAGE if all(is_image_file(item) and Path(item).is_file() for item in items) else TEXT

