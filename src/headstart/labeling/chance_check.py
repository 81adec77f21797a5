"""Is the out-of-fold model clearly better than chance? Label-quality help waits until it is.

Label issues and low-confidence reviews rank labels by a model's held-out probabilities. A model at
chance ranks at random: with 62 labels and an out-of-fold accuracy of 0.47, confident learning
flagged 24 labels, 22 of them correct. So these flags are held back until the model is clearly
better than the simplest guess.

The test: the out-of-fold accuracy's Wilson score interval (Wilson 1927; Brown, Cai & DasGupta 2001
recommend it over the normal interval at small n) at 95% has a lower bound above the majority-class
share, the accuracy of always answering the most common given label. The labels the project still
needs are the smallest count at which the same accuracy would pass the test; a model at or below
chance is assumed to reach chance + ``ASSUMED_GAIN`` (how many labels it takes to show a modest model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z_95 = 1.959964  # two-sided 95%
ASSUMED_GAIN = 0.10  # the gain over chance assumed for a model that shows none yet
MAX_LABELS_NEEDED = 100_000


def wilson_lower(successes: int, n: int, z: float = Z_95) -> float:
    """Lower bound of the Wilson score interval of a binomial proportion (0 for n = 0)."""
    if n <= 0:
        return 0.0
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def labels_to_clear(accuracy: float, chance: float, z: float = Z_95) -> int | None:
    """The fewest labels at which an out-of-fold ``accuracy`` passes the test against ``chance``
    (None when it cannot: accuracy at or below chance)."""
    if accuracy <= chance:
        return None
    low, high = 1, 2
    while wilson_lower(round(accuracy * high), high, z) <= chance:
        if high >= MAX_LABELS_NEEDED:
            return None
        low, high = high, high * 2
    while low < high:  # the bound grows with n at a fixed accuracy above chance
        middle = (low + high) // 2
        if wilson_lower(round(accuracy * middle), middle, z) > chance:
            high = middle
        else:
            low = middle + 1
    return high


@dataclass(frozen=True)
class ChanceCheck:
    """The out-of-fold model against always guessing the most common label."""

    labels: int
    accuracy: float
    lower: float
    chance: float
    majority: str
    labels_needed: int | None  # in all, when held back; None when clear (or when it cannot be said)
    assumed_accuracy: float

    @property
    def clear(self) -> bool:
        return self.lower > self.chance

    def message(self) -> str:
        """One paragraph for a person: why the flags are held back and what to do."""
        if self.clear:
            return (f"out of fold the model is better than chance: accuracy {self.accuracy:.2f} on {self.labels} "
                    f"labels (95% lower bound {self.lower:.2f} > {self.chance:.2f}, always '{self.majority}')")
        if self.labels_needed is None:
            more = "many more items"
        else:
            extra = max(self.labels_needed - self.labels, 1)
            more = (f"about {extra} more items (about {self.labels_needed} labels in all, if the model reaches "
                    f"{self.assumed_accuracy:.2f} out of fold)")
        return (f"held back: label issues and low-confidence reviews wait until the model is clearly better "
                f"than chance, and it is not yet: out-of-fold accuracy {self.accuracy:.2f} on {self.labels} labels "
                f"(95% lower bound {self.lower:.2f}) against {self.chance:.2f} for always answering "
                f"'{self.majority}', so its flags would be guesses. Label {more}, then look again; if it stays "
                f"at chance, check that the labels follow the guidelines and that the backbone suits the data.")


def check_better_than_chance(given: np.ndarray, proba: np.ndarray, classes: list[str]) -> ChanceCheck:
    """Test out-of-fold ``proba`` (n, k) against the given labels (class ids, n).

    Args:
        given: the settled labels as class ids.
        proba: each item's probabilities from a model that did not see it.
        classes: the project's class names (for the message).

    Returns:
        The check; ``clear`` says whether the flags may be shown.
    """
    given = np.asarray(given, dtype=np.int64)
    n = len(given)
    counts = np.bincount(given, minlength=len(classes))
    chance = float(counts.max() / n) if n else 1.0
    correct = int((np.asarray(proba).argmax(axis=1) == given).sum()) if n else 0
    accuracy = correct / n if n else 0.0
    lower = wilson_lower(correct, n)
    assumed = accuracy if accuracy > chance else min(chance + ASSUMED_GAIN, 0.99)
    needed = None if lower > chance else labels_to_clear(assumed, chance)
    if needed is not None:
        needed = max(needed, n + 1)
    return ChanceCheck(labels=n, accuracy=accuracy, lower=lower, chance=chance,
                       majority=classes[int(counts.argmax())] if n else "", labels_needed=needed,
                       assumed_accuracy=assumed)
