"""A prior head pooled with a probe: what the class names know, kept while the labels are few.

A zero-shot head (:mod:`.zero_shot`) scores about 75% on SST-2 from the names alone, while a probe on
20 or 50 labels can score below it. Rather than choose one, the two are pooled in log space (a product
of experts, Hinton 2002): the blended logits are ``w * log probe + (1 - w) * prior``, which is again
one linear head on the same features, so it predicts, saves and exports like any other. The probe's
share ``w`` is chosen on the labels themselves, by log-loss, from the probe's out-of-fold
probabilities (it never saw the item it predicts) against the prior's (it never saw a label); as
labels arrive it grows to 1 on its own. A prior that knows nothing (class names such as "0" and "1")
gets no share.

Used by ``headstart fit`` for text (:func:`headstart.learn.trainer.train`) and by the labeling loop's
probe (:mod:`headstart.labeling.zero_shot_prior`).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from headstart.learn.head import LinearHead, fit_head, out_of_fold_proba, softmax

PROBE_WEIGHTS = np.linspace(0.0, 1.0, 11)  # the probe's share of the blended logits, tried in turn
# fit's blends are scored at their best temperature among these (blend_weight); the loop's at 1 as measured
FIT_TEMPERATURES = tuple(float(t) for t in np.geomspace(0.25, 4.0, 9))


def _log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)).mean())


def blended_proba(probe_proba: np.ndarray, prior_logits: np.ndarray, weight: float) -> np.ndarray:
    """The blend's probabilities: ``softmax(weight * log probe + (1 - weight) * prior logits)``."""
    return softmax(weight * np.log(np.clip(probe_proba, 1e-12, 1.0)) + (1.0 - weight) * prior_logits)


def blend_weight(probe_held_out: np.ndarray, prior_logits: np.ndarray, y: np.ndarray, *,
                 temperatures: tuple[float, ...] = (1.0,)) -> tuple[float, dict]:
    """The probe's share of the blend with the lowest log-loss on the labels, and what each part scored.

    Args:
        probe_held_out: the probe's out-of-fold probabilities of the labeled items (n, k).
        prior_logits: the prior head's logits of the same items (n, k).
        y: their class ids (n,).
        temperatures: each blend is also tried with its logits times each of these, and scored at its
            best. With more than ``(1.0,)`` a blend cannot win by softening an overconfident probe alone
            (which lowers log-loss without the prior knowing anything): the share then measures what
            the prior adds to the ranking. The record holds the chosen blend's ``temperature``.

    Returns:
        (weight, record): on equal loss the larger weight (more of the probe) wins.
    """
    blends = [blended_proba(probe_held_out, prior_logits, w) for w in PROBE_WEIGHTS]

    def best_loss(proba: np.ndarray) -> tuple[float, float]:  # (log-loss, temperature) at its best temperature
        log_proba = np.log(np.clip(proba, 1e-12, 1.0))
        return min((_log_loss(softmax(t * log_proba), y), t) for t in temperatures)

    scored = [best_loss(proba) for proba in blends]
    losses = np.array([loss for loss, _ in scored])
    best = int(np.flatnonzero(losses <= losses.min() + 1e-12).max())
    record = {"probe_weight": float(PROBE_WEIGHTS[best]), "temperature": float(scored[best][1]),
              "accuracy_blended": float((blends[best].argmax(axis=1) == y).mean()),
              "accuracy_probe": float((probe_held_out.argmax(axis=1) == y).mean()),
              "accuracy_zero_shot": float((prior_logits.argmax(axis=1) == y).mean()),
              "log_loss_blended": float(losses[best]), "log_loss_probe": float(losses[-1]),
              "log_loss_zero_shot": float(losses[0])}
    return float(PROBE_WEIGHTS[best]), record


def blended_with(prior: LinearHead, head: LinearHead, labeled_features: np.ndarray, probe_held_out: np.ndarray,
                 y: np.ndarray, *, temperatures: tuple[float, ...] = (1.0,)) -> tuple[LinearHead, dict]:
    """``head`` blended with the ``prior`` head (:func:`blend_weight` chooses the share), and the record.

    Where the prior takes part, the blend's logits are multiplied by the temperature it scored best at
    (1 with the default ``temperatures``): the blend's scale is otherwise the two heads' mix, and out of
    fold it is then as sure as it is right. A probe with the whole share is left exactly as it was.
    """
    weight, record = blend_weight(probe_held_out, prior.logits(labeled_features), y, temperatures=temperatures)
    scale = record["temperature"] = record["temperature"] if weight < 1.0 else 1.0
    return LinearHead((scale * (weight * head.weight + (1.0 - weight) * prior.weight)).astype(np.float32),
                      (scale * (weight * head.bias + (1.0 - weight) * prior.bias)).astype(np.float32)), record


def probe_with_prior(prior: LinearHead, head: LinearHead, x: np.ndarray, y: np.ndarray, n_classes: int, c: float,
                     *, seed: int = 0) -> tuple[LinearHead, dict]:
    """``head`` (a probe of strength ``c`` fitted on ``x``, ``y``) blended with ``prior``, and the record.

    The share is chosen on the out-of-fold probabilities of probes of the same strength on the same labels.
    """
    held_out = out_of_fold_proba(x, y, n_classes, partial(fit_head, n_classes=n_classes, c=c, seed=seed), seed=seed)
    return blended_with(prior, head, x, held_out, y, temperatures=FIT_TEMPERATURES)


def prior_sentence(blend: dict) -> str:
    """What the class names' zero-shot prior did to the probe (a :func:`blend_weight` record), in a sentence."""
    if blend["probe_weight"] >= 1.0:
        return (f"zero-shot prior not used: the probe alone predicted the labels best out of fold "
                f"({blend['accuracy_probe']:.1%}; the class names alone {blend['accuracy_zero_shot']:.1%})")
    return (f"zero-shot prior: the probe blended with the class names' head (the probe's share "
            f"{blend['probe_weight']:.0%}): {blend['accuracy_blended']:.1%} out of fold, "
            f"the probe alone {blend['accuracy_probe']:.1%}, the names alone {blend['accuracy_zero_shot']:.1%}")
