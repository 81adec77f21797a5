"""The adaptation methods at the level of features, each a head for an unlabeled domain.

Each turns labeled features of one domain and unlabeled features of the other into a head for the other.

Each is a function ``(fit, train_x, train_y, other_x) -> head``: ``fit`` fits a plain head, the
other domain's features are what the returned head will read. The same functions serve the model's
final adaptation (source -> target) and reverse validation (target -> source, see
:mod:`headstart.adapt.choose`). AdaBN changes the backbone's statistics rather than the head, and is
not among them (:mod:`headstart.adapt.adabn`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from headstart.adapt.coral import coral_align
from headstart.adapt.label_shift import prior_corrected
from headstart.adapt.self_training import FitHead, self_trained
from headstart.learn.head import LinearHead

METHODS = ("none", "coral", "adabn", "prior", "self-train", "coral-self-train")  # what --adapt takes besides auto
Method = Callable[[FitHead, np.ndarray, np.ndarray, np.ndarray], LinearHead]


def _plain(fit: FitHead, train_x: np.ndarray, train_y: np.ndarray, other_x: np.ndarray) -> LinearHead:
    return fit(train_x, train_y)


def _coral(fit: FitHead, train_x: np.ndarray, train_y: np.ndarray, other_x: np.ndarray) -> LinearHead:
    return fit(coral_align(train_x, other_x), train_y)


def _prior(fit: FitHead, train_x: np.ndarray, train_y: np.ndarray, other_x: np.ndarray) -> LinearHead:
    return prior_corrected(fit(train_x, train_y), other_x)[0]


def _self_train(fit: FitHead, train_x: np.ndarray, train_y: np.ndarray, other_x: np.ndarray) -> LinearHead:
    return self_trained(fit, train_x, train_y, other_x)


def _coral_self_train(fit: FitHead, train_x: np.ndarray, train_y: np.ndarray, other_x: np.ndarray) -> LinearHead:
    aligned = coral_align(train_x, other_x)
    return self_trained(fit, aligned, train_y, other_x, start=fit(aligned, train_y))


FEATURE_METHODS: dict[str, Method] = {"none": _plain, "coral": _coral, "prior": _prior,
                                      "self-train": _self_train, "coral-self-train": _coral_self_train}
DESCRIPTIONS = {
    "none": "no adaptation",
    "coral": "CORAL: the probe trained on source features re-coloured with the target's covariance",
    "adabn": "AdaBN: batch-norm statistics re-estimated on the target, relative to the source's",
    "prior": "label-prior correction: the outputs moved to the target's class priors, estimated by EM",
    "self-train": "self-training on the target's confident pseudo-labels",
    "coral-self-train": "CORAL, then self-training on the target's confident pseudo-labels from the CORAL probe",
}
