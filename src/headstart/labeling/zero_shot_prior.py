"""The zero-shot start kept as a prior: each probe of a zero-shot project is blended with it.

A project that started zero-shot (:mod:`.zero_shot_start`) has a model worth about 75% on SST-2
before any label, while the loop's first probes, on 20 or 50 labels chosen near the boundary, can
score below it. Replacing the zero-shot head with the first probe would throw that away. Instead
each probe is pooled with it in log space (a product of experts, Hinton 2002): the blended logits
are ``w * probe + (1 - w) * zero_shot``, which is again one linear head on the same features, so
``next``, pre-labels and exports are unchanged. The weight ``w`` is chosen on the labels themselves:
the probe's out-of-fold probabilities (it never saw the item it predicts) against the zero-shot
head's (it never saw a label), by log-loss. As labels arrive the probe's share grows to 1 on its own.
"""

from __future__ import annotations

import numpy as np

from headstart.learn.head import LinearHead, softmax

PROBE_WEIGHTS = np.linspace(0.0, 1.0, 11)  # the probe's share of the blended logits, tried in turn


def zero_shot_version(project):
    """The project's zero-shot start version (the oldest probe made without labels), None where it has none."""
    for version in project.model_versions("probe"):
        if version.status == "done" and (version.metrics or {}).get("zero_shot"):
            return version
    return None


def _log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)).mean())


def blended_proba(probe_proba: np.ndarray, zero_shot_logits: np.ndarray, weight: float) -> np.ndarray:
    """The blend's probabilities: ``softmax(weight * log probe + (1 - weight) * zero-shot logits)``."""
    return softmax(weight * np.log(np.clip(probe_proba, 1e-12, 1.0)) + (1.0 - weight) * zero_shot_logits)


def blend_weight(probe_held_out: np.ndarray, zero_shot_logits: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """The probe's share of the blend with the lowest log-loss on the labels, and what each part scored.

    Args:
        probe_held_out: the probe's out-of-fold probabilities of the labeled items (n, k).
        zero_shot_logits: the zero-shot head's logits of the same items (n, k).
        y: their class ids (n,).

    Returns:
        (weight, record): on equal loss the larger weight (more of the probe) wins.
    """
    blends = [blended_proba(probe_held_out, zero_shot_logits, w) for w in PROBE_WEIGHTS]
    losses = np.array([_log_loss(proba, y) for proba in blends])
    best = int(np.flatnonzero(losses <= losses.min() + 1e-12).max())
    record = {"probe_weight": float(PROBE_WEIGHTS[best]),
              "accuracy_blended": float((blends[best].argmax(axis=1) == y).mean()),
              "accuracy_probe": float((probe_held_out.argmax(axis=1) == y).mean()),
              "accuracy_zero_shot": float((zero_shot_logits.argmax(axis=1) == y).mean()),
              "log_loss_blended": float(losses[best]), "log_loss_probe": float(losses[-1]),
              "log_loss_zero_shot": float(losses[0])}
    return float(PROBE_WEIGHTS[best]), record


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


def blended_with(zero_shot: LinearHead, head: LinearHead, labeled_features: np.ndarray, probe_held_out: np.ndarray,
                 y: np.ndarray) -> tuple[LinearHead, dict]:
    """``head`` blended with the ``zero_shot`` head (:func:`blend_weight` chooses the share), and the record."""
    weight, record = blend_weight(probe_held_out, zero_shot.logits(labeled_features), y)
    return LinearHead((weight * head.weight + (1.0 - weight) * zero_shot.weight).astype(np.float32),
                      (weight * head.bias + (1.0 - weight) * zero_shot.bias).astype(np.float32)), record
