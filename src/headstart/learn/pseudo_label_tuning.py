"""Self-training of a fine-tune: the backbone learns a teacher's confident labels of the unlabeled pool too.

With a few hundred labels, a fine-tune on the labels alone overfits them. Given a pool, the trainer
lets a teacher that learned from the pool label it first (:func:`headstart.learn.trainer._teacher`);
the pool items it is surest of, :data:`PSEUDO_LABELS` in all spread evenly over the classes (at
most the confident half of each predicted class), join the training split, and the fine-tune
learns from both (Xie et al. 2020, "Self-training with noisy student"). Validation keeps the real
labels only: the fine-tune is judged and chosen as without the pool.

- Images, tuned in stages under augmentation: the teacher is the probe trained on the pool. On
  Fashion-MNIST, the 200 labels the labeling loop chose, ``fit`` in ``auto`` with the pool: 84.8%
  (5 seeds) against the loop's pool-trained probe's 82.6% and the fine-tune on the labels alone's
  79.6%, for a fine-tune over about 2,000 more images (28 CPU minutes a fit there, against 17).
- Text, tuned on contrastive pairs: the teacher is a first contrastive fine-tune on the labels
  alone, its head trained on the pool; the student is tuned from the pretrained encoder on labels and
  pseudo-labels, in about the steps the labels alone would take (:func:`settings`). On SST-2, the
  same 200 labels: 81.5% (5 seeds) against 80.1% for the labels alone and 79.7% with the pooled
  probe as teacher (its 2,000 pseudo-labels were 92% right, yet it taught the student its mistakes),
  in about 10 CPU minutes against 13.5 (benchmarks/README.md, "the text fine-tune learns a fine-tune's
  pseudo-labels"). The student is kept only when it scores at least its teacher on validation
  (:func:`headstart.learn.trainer._student_or_teacher`): a weak teacher's labels cost one seed of five
  4.6 points at 100 labels.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from headstart.data.dataset import Dataset
from headstart.data.splits import concat
from headstart.learn.config import CONTRASTIVE_PASSES, FinetuneConfig
from headstart.learn.pseudo_labels import confident_items

PSEUDO_LABELS = 2_000  # pool items in all, over the classes: 200 a class of 10 is what was measured
CONFIDENT_SHARE = 0.5  # of each class's predicted pool items, at most: the rest are too unsure to teach
MIN_CONTRASTIVE_PASSES = 2  # over labels and pseudo-labels; the judged run takes half (one)


def applies(modality: str, strategy: str, n_train: int, pool: Dataset | None) -> bool:
    """Whether a fine-tune of ``n_train`` labeled items learns pseudo-labels of ``pool`` too.

    Images tuned in stages and text tuned on contrastive pairs, with a pool, and fewer labels than
    pseudo-labels: from there on the labels carry the fine-tune, and the pool only trains its head
    (:func:`headstart.learn.trainer.with_pool`). Text tuned in stages (a few hundred labels a class)
    was not measured with them.
    """
    tuned_with_them = (modality, strategy) in (("image", "staged"), ("text", "contrastive"))
    return pool is not None and len(pool) > 0 and tuned_with_them and n_train < PSEUDO_LABELS


def settings(config: FinetuneConfig, strategy: str, n_labeled: int, n_joined: int) -> FinetuneConfig:
    """The fine-tune's settings once ``n_joined`` items (labels and pseudo-labels) train it.

    The strategy stays the one the labels chose (more items would switch text to staged tuning).
    A contrastive run keeps about the steps it would take on the labels alone: in-batch passes are
    counted for a few dozen texts (:data:`headstart.learn.config.CONTRASTIVE_PASSES`), and two passes
    over two thousand texts already pair each one with about thirty others, more than SetFit's twenty.
    Epochs a user asked for count over the labels too, so ``--epochs 5`` takes the steps of five
    passes over them, not of five over ten times as many texts.
    """
    joined = replace(config, strategy=strategy)
    if strategy == "contrastive":
        passes, floor = (CONTRASTIVE_PASSES, MIN_CONTRASTIVE_PASSES) if config.epochs is None else (config.epochs, 1)
        joined.epochs = max(floor, math.ceil(passes * n_labeled / max(1, n_joined)))
    return joined


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
