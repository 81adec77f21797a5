"""Zero-shot classification from class names: a linear head whose rows are the classes' text embeddings.

Each class is described by its name or a short description; the description goes through a few
templates ("this is {}."), each is embedded by the sentence encoder, and the unit embeddings are
averaged into the class's prototype (prompt ensembling, Radford et al. 2021, "Learning Transferable
Visual Models From Natural Language Supervision"). An item's score for a class is the cosine between
its feature and the prototype: for an encoder that normalizes its features (minilm-l6, mpnet-base)
that is a dot product, so the scores are a linear head that predicts, saves and exports like any other.

Raw cosines favour whichever prototype sits nearest the pool's centre ("a text about positive" is
nearer every review than "a text about negative"), so the scores are calibrated on the pool's own
similarity distribution, without labels: each class's similarities are standardized over the pool
(subtract their mean, divide by their spread), which folds into the head as a scale on the row and a
bias, and a fixed temperature turns them into probabilities. The contextual calibration of Zhao et al.
2021 ("Calibrate Before Use") corrects the same bias with a content-free input; the pool's mean is that
input measured on the data. Then the prototypes move towards the pool: each becomes the mean of the
pool's features weighted by the calibrated probabilities of its class, averaged half and half with the
text prototype (so the description keeps its say), a few times, as k-means steps started from the
text prototypes (the soft k-means refinement of prototypes with unlabeled items of Ren et al. 2018,
"Meta-Learning for Semi-Supervised Few-Shot Classification"). ``benchmarks/zero_shot.py`` measures each step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from headstart.errors import DataError
from headstart.learn.head import LinearHead

# Chosen in benchmarks/zero_shot.py (MR and TREC's training split, not the reported test sets).
TEMPLATES = ("{}", "this is {}.", "a text about {}.", "it is {}.")
CALIBRATIONS = ("none", "center", "standardize")
CALIBRATION = "standardize"
# The logits are standardized similarities times this (benchmarks/zero_shot.py): a compromise between the
# development sets, where two classes (MR) had their lowest calibration error at 3-4 and six (TREC) at 1.5.
TEMPERATURE = 2.0
REFINE_STEPS = 2  # benchmarks/zero_shot.py: on the dev sets +1.6 (MR) and +5.0 (TREC) points; 5 steps no surer
UNCALIBRATED_TEMPERATURE = 50.0  # raw cosines differ by hundredths: scaled as CLIP scales them (its 100, halved)


@dataclass
class ZeroShotHead:
    """The head and what made it, for the model folder's config and report.

    Attributes:
        head: the linear head over the backbone's features.
        descriptions: class -> the text its templates were filled with.
        templates: the templates, ``{}`` standing for the description.
        calibration: ``none``, ``center`` or ``standardize``.
        calibrated_on: how many items the calibration's statistics came from (0: none).
        temperature: multiplies the calibrated scores.
        refine_steps: how many times the prototypes moved towards the pool.
        similarity_mean, similarity_std: per class, over those items (empty when uncalibrated).
    """

    head: LinearHead
    descriptions: dict[str, str]
    templates: tuple[str, ...]
    calibration: str
    calibrated_on: int
    temperature: float
    refine_steps: int = 0
    similarity_mean: list[float] = field(default_factory=list)
    similarity_std: list[float] = field(default_factory=list)

    def record(self) -> dict:
        """The config.json entry ``zero_shot``."""
        return {"descriptions": self.descriptions, "templates": list(self.templates),
                "calibration": self.calibration, "calibrated_on": self.calibrated_on,
                "temperature": self.temperature, "refine_steps": self.refine_steps,
                "similarity_mean": self.similarity_mean,
                "similarity_std": self.similarity_std}


def parse_classes(text: str | Sequence[str] | None) -> list[str]:
    """Class names from ``"a,b,c"`` or a list; one clear error for none, one alone, or duplicates.

    Raises:
        DataError: fewer than two names, or a name given twice.
    """
    if text is None:
        raise DataError("zero-shot needs the class names", where="--classes", fix='e.g. --classes "negative,positive"')
    names = [name.strip() for name in (text.split(",") if isinstance(text, str) else text)]
    names = [name for name in names if name]
    if len(names) < 2:
        raise DataError(f"zero-shot needs two or more classes, got {len(names)}", where="--classes",
                        fix='e.g. --classes "negative,positive"')
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"class '{name}' is given twice", where="--classes", fix="name each class once")
        seen.add(name)
    return names


def parse_descriptions(text: str | Mapping[str, str] | None, classes: Sequence[str]) -> dict[str, str]:
    """Class -> description, from ``"a=first text,b=second"`` or a mapping; a class not described keeps its name.

    Raises:
        DataError: an entry without ``=``, an empty description, a class described twice, or one not in ``classes``.
    """
    if text is None:
        pairs: list[tuple[str, str]] = []
    elif isinstance(text, str):
        pairs = []
        for entry in (part for part in text.split(",") if part.strip()):
            name, equals, description = entry.partition("=")
            if not equals:
                raise DataError(f"cannot read '{entry.strip()}'", where="--describe",
                                fix='write class=description, e.g. "negative=a negative movie review"')
            pairs.append((name.strip(), description.strip()))
    else:
        pairs = [(str(name).strip(), str(description).strip()) for name, description in text.items()]
    described: dict[str, str] = {}
    for name, description in pairs:
        if name not in classes:
            raise DataError(f"'{name}' is described but is not one of the classes ({', '.join(classes)})",
                            where="--describe",
                            fix="describe only the classes (named in --classes, or the labels of the data)")
        if name in described:
            raise DataError(f"class '{name}' is described twice", where="--describe", fix="describe each class once")
        if not description:
            raise DataError(f"the description of '{name}' is empty", where="--describe",
                            fix="write class=description, or leave the class out to use its name")
        described[name] = description
    return {name: described.get(name, name) for name in classes}


def unit(rows: np.ndarray) -> np.ndarray:
    """``rows`` (n, d) scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


def class_prototypes(embed: Callable[[list[str]], np.ndarray], descriptions: Sequence[str],
                     templates: Sequence[str] = TEMPLATES) -> np.ndarray:
    """Unit prototypes (k, d): each description's templated texts embedded, normalized, averaged, normalized.

    Args:
        embed: texts -> features (n, d), the backbone's.
        descriptions: one per class.
        templates: format strings with one ``{}``.
    """
    texts = [template.format(description) for description in descriptions for template in templates]
    embedded = unit(np.asarray(embed(texts), dtype=np.float64)).reshape(len(descriptions), len(templates), -1)
    return unit(embedded.mean(axis=1))


def prototype_head(prototypes: np.ndarray, pool_features: np.ndarray | None, *, calibration: str = CALIBRATION,
                   temperature: float | None = None) -> tuple[LinearHead, np.ndarray, np.ndarray]:
    """The linear head scoring features against unit ``prototypes``, calibrated on ``pool_features``.

    ``none``: logits = t * cos. ``center``: t * (cos - pool mean of the class). ``standardize``:
    t * (cos - mean) / std. Each folds into one weight row (prototype * t / std) and a bias (-t * mean / std).
    Without pool features (or fewer than two items) the head is uncalibrated.

    Returns:
        The head, and each class's similarity mean and spread over the pool (empty when uncalibrated).
    """
    if calibration not in CALIBRATIONS:
        raise DataError(f"unknown calibration '{calibration}'", fix=f"use one of {', '.join(CALIBRATIONS)}")
    k = len(prototypes)
    mean, std = np.zeros(k), np.ones(k)
    if pool_features is None or len(pool_features) < 2:
        calibration = "none"
    if calibration != "none":
        similarity = np.asarray(pool_features, dtype=np.float64) @ prototypes.T
        mean = similarity.mean(axis=0)
        if calibration == "standardize":
            std = np.maximum(similarity.std(axis=0), 1e-6)
    if temperature is None:
        temperature = TEMPERATURE if calibration == "standardize" else UNCALIBRATED_TEMPERATURE
    weight = prototypes * (temperature / std)[:, None]
    bias = -temperature * mean / std
    head = LinearHead(weight.astype(np.float32), bias.astype(np.float32))
    if calibration == "none":
        return head, np.zeros(0), np.zeros(0)
    return head, mean, std


def refine_prototypes(prototypes: np.ndarray, pool_features: np.ndarray, steps: int = REFINE_STEPS, *,
                      temperature: float = TEMPERATURE) -> np.ndarray:
    """Unit prototypes moved towards the pool: ``steps`` soft k-means steps anchored to the text prototypes.

    Each step: the pool's standardized similarities give each item class probabilities (softmax at
    ``temperature``); a class's new prototype is half its text prototype, half the probability-weighted
    mean of the pool's features, normalized.
    """
    pool = unit(np.asarray(pool_features, dtype=np.float64))
    moved = prototypes
    for _ in range(steps):
        similarity = pool @ moved.T
        logits = temperature * (similarity - similarity.mean(axis=0)) / np.maximum(similarity.std(axis=0), 1e-6)
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        moved = unit(0.5 * prototypes + 0.5 * unit(weights.T @ pool))
    return moved


def zero_shot_head(embed: Callable[[list[str]], np.ndarray], classes: Sequence[str],
                   descriptions: Mapping[str, str] | None = None, pool_features: np.ndarray | None = None, *,
                   templates: Sequence[str] = TEMPLATES, calibration: str = CALIBRATION,
                   temperature: float | None = None, refine_steps: int = REFINE_STEPS) -> ZeroShotHead:
    """A zero-shot head for ``classes`` over the features ``embed`` computes.

    Args:
        embed: texts -> the backbone's features (n, d); unit length for the scores to be cosines.
        classes: the class names, the head's row order.
        descriptions: class -> text to describe it with (default: the name).
        pool_features: features of unlabeled items like those to predict, to calibrate on.
        templates: format strings with one ``{}``, averaged over.
        calibration: ``standardize`` (default), ``center`` or ``none``; see :func:`prototype_head`.
        temperature: multiplies the calibrated scores (default: the one measured for ``calibration``).
        refine_steps: prototype refinement steps on the pool (:func:`refine_prototypes`); only with
            ``standardize`` and at least two pool items.
    """
    described = {name: (descriptions or {}).get(name, name) for name in classes}
    prototypes = class_prototypes(embed, [described[name] for name in classes], templates)
    refined = refine_steps if calibration == "standardize" and pool_features is not None and len(pool_features) > 1 \
        else 0
    if refined:
        prototypes = refine_prototypes(prototypes, pool_features, refined)
    head, mean, std = prototype_head(prototypes, pool_features, calibration=calibration, temperature=temperature)
    used = calibration if len(mean) else "none"
    scale = float(temperature if temperature is not None else
                  TEMPERATURE if used == "standardize" else UNCALIBRATED_TEMPERATURE)
    return ZeroShotHead(head, described, tuple(templates), used,
                        0 if used == "none" else len(pool_features), scale, refined,
                        [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std] if used == "standardize"
                        else [])
