"""Label-prior correction: the head's outputs moved to the target's class priors (Saerens et al. 2002).

Under label shift p(x | y) stays and p(y) changes, so the right posterior on the target is the
source's multiplied by p_t(y) / p_s(y) and renormalized. The target priors p_t are estimated
without labels by the EM re-estimation of :func:`headstart.evaluate.priors.em_priors`. For a softmax
head the correction is a shift of its bias by log p_t(y) - log p_s(y): the corrected model is an
ordinary head, which saves, predicts and exports like any other.

Heads in headstart are trained with classes weighted by inverse frequency, so their posteriors are
those of balanced classes: the source priors they carry are uniform.
"""

from __future__ import annotations

import numpy as np

from headstart.learn.head import LinearHead

PRIOR_FLOOR = 1e-3  # a class the EM drives to zero keeps a little mass: its log must stay finite


def balanced_priors(n_classes: int) -> np.ndarray:
    """The priors a class-weighted head's posteriors carry: uniform."""
    return np.full(n_classes, 1.0 / n_classes)


def target_priors(target_proba: np.ndarray, source_priors: np.ndarray) -> np.ndarray:
    """The target's class priors by EM from the source model's probabilities on target items."""
    from headstart.evaluate.priors import em_priors

    priors, _ = em_priors(target_proba, source_priors)
    priors = np.maximum(np.asarray(priors, dtype=np.float64), PRIOR_FLOOR)
    return priors / priors.sum()


def prior_shifted(head: LinearHead, source_priors: np.ndarray, new_priors: np.ndarray) -> LinearHead:
    """The head whose softmax is ``head``'s reweighted by ``new_priors / source_priors``."""
    shift = np.log(new_priors) - np.log(source_priors)
    return LinearHead(head.weight, (head.bias + shift).astype(head.bias.dtype))


def prior_corrected(head: LinearHead, target_features: np.ndarray,
                    source_priors: np.ndarray | None = None) -> tuple[LinearHead, np.ndarray]:
    """The head corrected to the target's estimated priors, and those priors.

    Args:
        head: the source model's head.
        target_features: the target's features (m, d) under the same backbone.
        source_priors: the priors the head's posteriors carry (default: uniform, see the module's docstring).

    Returns:
        (corrected head, target priors (k,)).
    """
    k = len(head.bias)
    source_priors = balanced_priors(k) if source_priors is None else source_priors
    priors = target_priors(head.proba(target_features), source_priors)
    return prior_shifted(head, source_priors, priors), priors
