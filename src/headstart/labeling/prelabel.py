"""Pre-labels and auto-accept at a target precision.

The newest probe predicts the pool (stored with its model version, see ``retrain``). Auto-accept
takes the predictions whose confidence reaches a threshold, chosen on held-out labeled data: the
out-of-fold predictions of the labeled items (each predicted by a probe that never saw it). The
threshold is the lowest one at which the measured precision of the items at or above it reaches the
target, with at least ``min_support`` items there, so that it accepts as many items as it can. When
no threshold reaches the target, nothing is accepted and the report says so. Labels picked by
active learning are harder than the pool's average item, so the measured precision errs low: the
pool's precision at the threshold is, if anything, higher than reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from headstart.errors import LabelingError
from headstart.labeling.judging import judging_mask, project_share
from headstart.labeling.loop_probe import held_out_proba, pool_scaling
from headstart.learn.head import LinearHead
from headstart.labeling.retrain import PRELABEL_CHUNK, predict_pool, retrain_probe


@dataclass
class Threshold:
    """A confidence threshold and what it gave on held-out data (None when the target is out of reach)."""

    threshold: float | None
    precision: float | None   # measured precision at or above the threshold, on held-out items
    support: int              # held-out items at or above it
    held_out: int             # held-out items in all
    target: float


def choose_threshold(confidence: np.ndarray, correct: np.ndarray, target: float,
                     min_support: int = 10) -> Threshold:
    """The lowest confidence threshold whose held-out precision reaches ``target``.

    Args:
        confidence: top-class probability of each held-out item, shape (m,).
        correct: whether that prediction equals the given label, shape (m,).
        target: precision to reach, in (0, 1].
        min_support: fewest held-out items that must lie at or above the threshold.
    """
    if not 0.0 < target <= 1.0:
        raise LabelingError(f"target precision {target} is not in (0, 1]", where="--target-precision",
                            fix="e.g. 0.98")
    order = np.argsort(-confidence, kind="stable")
    conf, hits = confidence[order], correct[order].astype(float)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    # A threshold equal to a confidence takes every item with that confidence: only the last of ties counts.
    last_of_tie = np.r_[conf[1:] != conf[:-1], True] if len(conf) else np.zeros(0, dtype=bool)
    ok = np.flatnonzero((precision >= target) & last_of_tie & (np.arange(1, len(conf) + 1) >= min_support))
    if len(ok) == 0:
        return Threshold(None, None, 0, int(len(conf)), target)
    k = ok[-1]
    return Threshold(float(conf[k]), float(precision[k]), int(k + 1), int(len(conf)), target)


def prelabel(project, *, target_precision: float | None = None, accept: bool = False, min_support: int = 10,
             folds: int = 5, seed: int = 0, chunk: int = PRELABEL_CHUNK) -> dict:
    """Pre-label the pool with the newest probe (trained now when there is none), resumably
    (:func:`predict_pool`), and, with a target precision, choose the auto-accept threshold; with
    ``accept``, store the accepted predictions as labels of source ``model``. Returns a report dict
    (``resumed``: items an earlier, interrupted run had pre-labelled)."""
    version = project.latest_model("probe")
    if version is None:
        retrain_probe(project, seed=seed)
        version = project.latest_model("probe")
    head = LinearHead.from_bytes(version.weights)
    predicted = predict_pool(project, version.id, head, chunk=chunk)
    report = {"model_version": version.id, "predicted": project.size, "resumed": project.size - predicted}
    if target_precision is None:
        return report
    positions, y = project.resolved()
    # Held-out predictions of probes like the one that pre-labeled the pool (the loop's probe, the
    # same C), so that a threshold on their confidence means the same on the pool.
    features = project.features()
    held_out = held_out_proba(features[positions], y, len(project.classes), folds=folds, seed=seed,
                                 c=(version.metrics or {}).get("C"), scaling=pool_scaling(features))
    chosen = choose_threshold(held_out.max(axis=1), held_out.argmax(axis=1) == y, target_precision, min_support)
    report["threshold"] = asdict(chosen)
    report["accepted"] = 0
    if chosen.threshold is None:
        report["note"] = (f"no threshold reaches {target_precision:.1%} precision on {chosen.held_out} held-out "
                          f"labels with at least {min_support} items above it; nothing accepted")
        return report
    proba = project.pool_proba(head)
    done = project.done_for(None)
    positions_set = np.zeros(len(proba), dtype=bool)
    positions_set[positions] = True
    single = project.required() <= 1  # several annotators' items stay with people
    # So do the items set apart for judging: accepting the confident ones would leave the hard ones to judge on.
    judging = judging_mask(project.size, project_share(project))
    take = np.flatnonzero((proba.max(axis=1) >= chosen.threshold) & ~done & ~positions_set & single & ~judging)
    report["eligible"] = int(len(take))
    if accept and len(take):
        rows = project.rows_at(take)
        labels = [(row.external_id, project.classes[int(proba[i].argmax())], f"model:v{version.id}")
                  for i, row in zip(take, rows)]
        project.add_labels(labels, source="model", model_version=version.id)
        report["accepted"] = int(len(take))
    return report
