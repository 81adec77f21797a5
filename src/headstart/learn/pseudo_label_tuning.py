"""Self-training of an image fine-tune: the backbone learns the probe's confident labels of the unlabeled pool too.

With a few hundred image labels, a staged fine-tune on the labels alone overfits them and scores
below the probe trained on the pool. Given a pool, the trainer lets that probe label it first;
the pool items it is surest of, :data:`PSEUDO_LABELS` in all spread evenly over the classes
(at most the confident half of each predicted class), join the training split, and the fine-tune
learns from both under its augmentation (Xie et al. 2020, "Self-training with noisy student").
Validation keeps the real labels only: the fine-tune is judged and chosen as without the pool.

Measured (benchmarks/README.md, "the fine-tune learns the pool's pseudo-labels in auto"):
Fashion-MNIST, the 200 labels the labeling loop chose, ``fit`` in ``auto`` with the pool: 84.8% (5
seeds) against the loop's pool-trained probe's 82.6% and the fine-tune on the labels alone's 79.6%.
The price is a fine-tune over about 2,000 more images (28 CPU minutes a fit there, against 17).
Text is left out: its few-label fine-tune is contrastive, over pairs of labeled texts, and was not
measured with pseudo-labels.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from headstart.data.dataset import Dataset
from headstart.data.splits import concat
from headstart.learn.pseudo_labels import confident_items

PSEUDO_LABELS = 2_000  # pool items in all, over the classes: 200 a class of 10 is what was measured
CONFIDENT_SHARE = 0.5  # of each class's predicted pool items, at most: the rest are too unsure to teach


def applies(modality: str, strategy: str, n_train: int, pool: Dataset | None) -> bool:
    """Whether a fine-tune of ``n_train`` labeled items learns pseudo-labels of ``pool`` too.

    Images tuned in stages, with a pool, and fewer labels than pseudo-labels: from there on the
    labels carry the fine-tune, and the pool only trains its head (:func:`headstart.learn.trainer.with_pool`).
    """
    return (pool is not None and len(pool) > 0 and modality == "image" and strategy == "staged"
            and n_train < PSEUDO_LABELS)


def with_pseudo_labels(train: Dataset, pool: Dataset, pool_proba: np.ndarray,
                       classes: list[str]) -> tuple[Dataset, dict]:
    """``train`` followed by the pool items ``pool_proba`` is surest of, labeled with its prediction.

    Args:
        train: the labeled training split.
        pool: the unlabeled items.
        pool_proba: the teacher's probabilities of ``pool`` (n, k), columns in ``classes`` order.
        classes: label names.

    Returns:
        (the training split the fine-tune learns from, a record: how many items a class, the lowest
        confidence taken).
    """
    positions, predicted = confident_items(pool_proba, CONFIDENT_SHARE, max(1, PSEUDO_LABELS // len(classes)))
    counts = np.bincount(predicted, minlength=len(classes))
    record = {"items": len(positions), "per_class": {c: int(n) for c, n in zip(classes, counts)},
              "lowest_confidence": float(pool_proba[positions].max(axis=1).min()) if len(positions) else None}
    return joined(train, pool, positions, predicted, classes), record


def joined(train: Dataset, pool: Dataset, positions: np.ndarray, predicted: np.ndarray,
           classes: list[str]) -> Dataset:
    """``train`` followed by the pool items at ``positions``, labeled ``classes[predicted]``, as training items."""
    pseudo = replace(pool.subset(positions), labels=[classes[i] for i in predicted],
                     splits=None if train.splits is None else ["train"] * len(positions))
    return concat(train, pseudo)
