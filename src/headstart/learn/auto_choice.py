"""How ``auto`` chooses between the fine-tune and the probe (:func:`headstart.learn.trainer.train`).

The one ahead on the validation split by more than the noise of the two scores is kept; closer scores
cannot be told apart, and then the model that won on average in the benchmarks at this many labels is
kept (:func:`favours_finetune`).
"""

from __future__ import annotations

import math

from headstart.learn.finetune import standard_error
from headstart.progress import say


# Images without a pool: below this many labels a class the probe beat the staged fine-tune on average.
IMAGE_FINETUNE_FROM = 30


def favours_finetune(modality: str, n_labels: int, n_classes: int, *, pool: bool) -> bool:
    """Whether ``auto`` keeps the fine-tune when validation cannot tell it from the probe.

    It does, unless the task is images with fewer than :data:`IMAGE_FINETUNE_FROM` labels a class and no
    pool. There the probe won on average: Fashion-MNIST on the labeling loop's labels, 5 seeds, by 8.6, 2.4
    and 1.1 points at 5, 10 and 20 labels a class (the fine-tune by 0.9 and 2.2 at 30 and 50), and on random
    labels at 10 a class by 4 points (one seed); a validation split of 10-40 items rarely told them apart, and the
    fine-tune's score on it is the best of its epochs. With a pool the image fine-tune learns the pool
    probe's pseudo-labels (:mod:`.pseudo_label_tuning`) and led from 10 labels a class; text
    fine-tunes led in every benchmark.
    """
    return modality != "image" or pool or n_labels >= IMAGE_FINETUNE_FROM * max(n_classes, 1)


def keeps_finetuned(tuned_accuracy: float, probe_accuracy: float, n_val: int, *, favoured: bool = True) -> bool:
    """Whether ``auto`` keeps a fine-tuned model rather than the probe.

    The one ahead on the ``n_val`` validation items by more than the standard error of the difference of
    the two accuracies is kept; closer scores cannot be told apart, and the ``favoured`` model is kept
    (the fine-tune when True, :func:`favours_finetune`). Each error is taken at the accuracy with one right
    and one wrong item added (Agresti and Caffo), so that a perfect score on four items does not count as
    certain.
    """
    if n_val == 0:
        return favoured

    def error(accuracy: float) -> float:
        return standard_error((accuracy * n_val + 1) / (n_val + 2), n_val)

    noise = math.hypot(error(tuned_accuracy), error(probe_accuracy))
    if favoured:
        return tuned_accuracy >= probe_accuracy - noise
    return tuned_accuracy > probe_accuracy + noise


def _compared_scores(validation: dict) -> tuple[float, float]:
    """(the fine-tune's, the probe's) validation accuracy as ``auto`` weighs them, given ``record["validation"]``.

    With a pool the two are compared as they would ship, each having learned from it: in the label-budget
    benchmark the fine-tune with the pool led there (SST-2 at 300 labels by 4 points; Fashion-MNIST at 200,
    once its image fine-tune learned the pool probe's pseudo-labels, :mod:`.pseudo_label_tuning`, and from
    300 labels).
    """
    if "finetuned_with_pool" in validation:
        return validation["finetuned_with_pool"], validation["probe_with_pool"]
    return validation["finetuned"], validation["probe"]


def _auto_keeps_tuned(validation: dict, n_val: int, favoured: bool = True) -> bool:
    """Whether ``auto`` keeps the fine-tune, given ``record["validation"]`` (:func:`keeps_finetuned`)."""
    return keeps_finetuned(*_compared_scores(validation), n_val, favoured=favoured)


def _auto_reason(validation: dict, favoured: bool) -> str:
    """The sentence that says why ``auto`` kept the probe."""
    tuned, probe = _compared_scores(validation)
    why = ("better beyond the two scores' noise" if favoured else
           f"the fine-tune not better beyond the two scores' noise, and without a pool the probe is the better "
           f"image model on average below {IMAGE_FINETUNE_FROM} labels a class")
    if "finetuned_with_pool" in validation:
        return (f"kept the probe: with the unlabeled pool it reached {probe:.1%} on the validation split, the "
                f"fine-tune {tuned:.1%}: {why}")
    return f"kept the probe: fine-tuning reached {tuned:.1%} on the validation split, the probe {probe:.1%}: {why}"


def auto_keeps_probe(record: dict, modality: str, n_train: int, n_val: int, n_classes: int, *, pool: bool) -> bool:
    """Whether ``auto`` keeps the probe over the fine-tune, given ``record["validation"]``.

    When it does, ``record["auto"]`` says why.
    """
    favoured = favours_finetune(modality, n_train + n_val, n_classes, pool=pool)
    if _auto_keeps_tuned(record["validation"], n_val, favoured):
        return False
    record["auto"] = _auto_reason(record["validation"], favoured)
    say(record["auto"])
    return True
