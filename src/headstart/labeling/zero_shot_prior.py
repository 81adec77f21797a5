"""The zero-shot start kept as a prior: each probe of a zero-shot project is blended with it.

A project that started zero-shot (:mod:`.zero_shot_start`) has a model worth about 75% on SST-2
before any label, while the loop's first probes, on 20 or 50 labels chosen near the boundary, can
score below it. Replacing the zero-shot head with the first probe would throw that away. Instead
each probe is pooled with it (:mod:`headstart.learn.prior`): one linear head on the same features,
so ``next``, pre-labels and exports are unchanged, the probe's share chosen on the loop's
out-of-fold probabilities and growing to 1 on its own as labels arrive.
"""

from __future__ import annotations

import numpy as np

from headstart.learn.head import LinearHead
from headstart.learn.prior import blended_proba, blended_with

# The project's settings of its zero-shot start (:mod:`.zero_shot_start`): whether it starts so, and the
# class descriptions, which the fine-tune jobs' prior reads too (:mod:`.retrain`).
SETTING, DESCRIBE_SETTING = "zero_shot_start", "zero_shot_describe"


def zero_shot_version(project):
    """The project's zero-shot start version (the oldest probe made without labels), None where it has none."""
    for version in project.model_versions("probe"):
        if version.status == "done" and (version.metrics or {}).get("zero_shot"):
            return version
    return None


def with_zero_shot_prior(project, head: LinearHead, labeled_features: np.ndarray, probe_held_out: np.ndarray,
                         y: np.ndarray) -> tuple[LinearHead, dict | None, np.ndarray]:
    """``head`` blended with the project's zero-shot start, the blend's record (None: no zero-shot
    start) and the blend's out-of-fold probabilities of the labeled items (``probe_held_out`` unblended).

    Args:
        project: the labeling project.
        head: the loop's probe on every settled label.
        labeled_features: the settled items' features (n, d).
        probe_held_out: the probe's out-of-fold probabilities of those items (n, k).
        y: their class ids (n,).
    """
    version = zero_shot_version(project)
    if version is None or version.weights is None:
        return head, None, probe_held_out
    zero_shot = LinearHead.from_bytes(version.weights)
    blended, record = blended_with(zero_shot, head, labeled_features, probe_held_out, y)
    held_out = blended_proba(probe_held_out, zero_shot.logits(labeled_features), record["probe_weight"])
    return blended, {"zero_shot_version": version.id, **record}, held_out

