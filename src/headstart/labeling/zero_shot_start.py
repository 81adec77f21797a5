"""The first model of a text project with a label set and no labels yet: zero-shot from the label names.

Opt-in (``headstart label init --zero-shot``, or ``init_project(..., zero_shot=True)``): the first
``next`` of such a project stores a probe version whose head is
:func:`headstart.learn.zero_shot.zero_shot_head`'s over the pool's features (calibrated on a sample
of the pool), pre-labels the pool with it, and picks the first batch class-balanced by its
predictions, so that the first batch holds items of every class the names can find and the loop's
own probe can be trained after it. The version counts zero labels: the usual retraining replaces it
at the first retrain (10 labels), but its head stays in every later probe as a prior
(:mod:`.zero_shot_prior`).
"""

from __future__ import annotations

import numpy as np

from headstart.labeling.retrain import refresh_predictions
from headstart.labeling.zero_shot_prior import DESCRIBE_SETTING, SETTING

CALIBRATION_SAMPLE = 20_000  # pool items the calibration's statistics come from


def wants_zero_shot(project) -> bool:
    """Whether the project asked for a zero-shot start and has neither a probe nor a label yet."""
    if not project.settings.get(SETTING) or project.modality != "text":
        return False
    return project.latest_model("probe") is None and len(project.resolved()[0]) == 0


def is_zero_shot(version) -> bool:
    """Whether a model version is the zero-shot start (not a probe trained on labels)."""
    return version is not None and bool((version.metrics or {}).get("zero_shot"))


def zero_shot_start(project, *, seed: int = 0) -> int | None:
    """Store the zero-shot probe version and pre-label the pool; its version id (None where the
    project's features do not come from its own backbone, so that the names cannot be compared with them)."""
    from headstart.backbones import create_backbone
    from headstart.features.extract import compute_features
    from headstart.learn.zero_shot import zero_shot_head

    backbone = create_backbone(project.backbone, **project.backbone_options)
    features = project.features()
    if features.shape[1] != backbone.feature_dim:
        return None
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(features), min(CALIBRATION_SAMPLE, len(features)), replace=False))

    def embed(texts: list[str]) -> np.ndarray:
        return compute_features(backbone, texts, description="label descriptions")

    made = zero_shot_head(embed, project.classes, project.settings.get(DESCRIBE_SETTING),
                          np.asarray(features[sample]))
    version = project.add_model_version("probe", status="done", n_labels=0, weights=made.head.to_bytes(),
                                        metrics={"zero_shot": made.record(), "n_labels": 0, "accuracy": None})
    refresh_predictions(project, made.head, version)
    return version
