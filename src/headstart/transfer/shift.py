"""``headstart shift``: is the target different from the source, and how?

Frozen features of both sides (from the features cache) go to the domain classifier of
:func:`headstart.evaluate.shift.shift_test` (cross-validated AUC, permutation p-value, decision),
and a probe trained on the labeled source predicts the target, whose class priors the EM of
:func:`headstart.evaluate.priors.em_priors` re-estimates (label shift). The summary names the
items most typical of each side and keeps a 2-D map of both; :mod:`headstart.transfer.shift_page`
writes it as a page.

Example:
    report = measure_shift(read_dataset("sst2.csv"), read_dataset("cr.csv", require_labels=False),
                           create_backbone("minilm-l6"))
    report.summary["shifted"], report.sentence(); report.save("runs/shift")
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from headstart.backbones import Backbone
from headstart.data.dataset import Dataset
from headstart.errors import DataError, HeadstartError
from headstart.evaluate.priors import UNDER_SHIFT
from headstart.evaluate.shift import ALPHA, MAX_ITEMS, MIN_PERMUTATIONS, MIN_ITEMS, PERMUTATIONS, shift_test
from headstart.features.extract import cached_features
from headstart.learn.target_priors import balanced_probe_priors
from headstart.progress import say
from headstart.transfer import page
from headstart.transfer.rank import stratified_subset
from headstart.transfer.shift_page import summary_sentence, write_shift_page


@dataclass
class ShiftReport:
    """What ``headstart shift`` found: :attr:`summary` is what ``--json`` prints and ``shift.json`` holds.

    The summary's keys: ``auc``, ``p_value``, ``shifted``, ``rule``, ``items_per_side``,
    ``permutations``, ``priors`` (class -> ``source``, ``target`` (estimated) and ``labeled`` (the
    target's own labels, None without), or None without two source classes), ``prior_shift`` (the
    largest change of a prior), ``typical`` (``source`` and ``target``: items with their
    ``p_target``), ``map`` and ``explained`` (the 2-D map), ``source``, ``target``, ``backbone``,
    ``modality``, ``seconds``.
    """

    summary: dict
    stem: ClassVar[str] = "shift"

    def sentence(self) -> str:
        """Whether the target is shifted, by how much, and how the priors moved."""
        return summary_sentence(self.summary)

    def table(self) -> str:
        """The domain test and the priors as a plain-text table."""
        rows = [["domain AUC", self.summary["auc"]], ["p-value", self.summary["p_value"]],
                ["items a side", self.summary["items_per_side"]], ["permutations", self.summary["permutations"]]]
        for name, value in (self.summary["priors"] or {}).items():
            rows.append([f"prior of {name}", f"{value['source']:.3f} -> {value['target']:.3f}"])
        return page.table_text(["measure", "value"], rows)

    def save(self, folder: str | Path) -> Path:
        """Write ``shift.json``, ``shift.png`` and ``shift.html`` into ``folder``."""
        return write_shift_page(folder, self.summary)


def check_pair(source: Dataset, target: Dataset) -> None:
    """Raise DataError when the two sides cannot be compared: another modality, no items, too few."""
    if source.modality != target.modality:
        raise DataError(f"the target is {target.modality}, the source {source.modality}; a shift is measured "
                        "between data of one kind", where=target.source, fix=f"give a {source.modality} target")
    for side, data in (("source", source), ("target", target)):
        if len(data) < MIN_ITEMS:
            raise DataError(f"the {side} has {len(data)} item(s): too few to tell two data sets apart",
                            where=data.source, fix=f"give at least {MIN_ITEMS} items on each side")


def check_settings(max_items: int, permutations: int) -> None:
    """Raise HeadstartError for a subsample too small to test, or too few permutations to reach p <= ALPHA."""
    if max_items < MIN_ITEMS:
        raise HeadstartError(f"{max_items} items a side are too few to tell two data sets apart",
                             where="--max-items", fix=f"give at least {MIN_ITEMS}")
    if permutations < MIN_PERMUTATIONS:
        raise HeadstartError(f"{permutations} permutations cannot give a p-value of {ALPHA} or less",
                             where="--permutations", fix=f"give at least {MIN_PERMUTATIONS}")


def measure_shift(source: Dataset, target: Dataset, backbone: Backbone, *, seed: int = 0,
                  max_items: int = MAX_ITEMS, permutations: int = PERMUTATIONS, engine: str = "auto",
                  cache_dir: str | Path | None = None) -> ShiftReport:
    """Measure how ``target`` differs from the labeled ``source`` on ``backbone``'s frozen features.

    Args:
        source: labeled items.
        target: items of the same modality, labels optional (where present, their priors are shown
            beside the estimate).
        backbone: the backbone whose features both sides are compared on.
        seed: seeds the subsamples, the folds, the permutations and the probe.
        max_items: items a side read through the backbone and tested (a stratified subsample of
            the source, a random one of the target).
        permutations: permutations of the p-value at most.
        engine: ``auto``/``onnx``/``torch``: where the forward passes run.
        cache_dir: the features cache (default ``$HEADSTART_CACHE`` or ``~/.cache/headstart``).

    Returns:
        A :class:`ShiftReport`.

    Raises:
        DataError: another modality, or a side with fewer than
            :data:`~headstart.evaluate.shift.MIN_ITEMS` items.
    """
    started = time.perf_counter()
    check_settings(max_items, permutations)
    check_pair(source, target)
    classes = source.classes
    source_ids = source.label_ids(classes)
    source = source.subset(stratified_subset(source_ids, max_items, seed))
    source_ids = source.label_ids(classes)
    target = target.subset(np.sort(np.random.default_rng(seed).permutation(len(target))[:max_items]))
    say(f"shift: {len(source)} source and {len(target)} target items on {backbone.name}")
    source_x = cached_features(backbone, source.items, source.hashes, engine=engine, cache_dir=cache_dir)
    target_x = cached_features(backbone, target.items, target.hashes, engine=engine, cache_dir=cache_dir)
    test = shift_test(source_x, target_x, seed=seed, max_items=max_items, permutations=permutations)
    known = target.labels is not None and set(target.labels) <= set(classes)
    priors = balanced_probe_priors(source_x, source_ids, target_x, classes, seed=seed,
                                   target_ids=target.label_ids(classes) if known else None)
    summary = {**test.summary(source.items, source.origins, target.items, target.origins), **priors,
               "priors_note": UNDER_SHIFT if test.shifted and priors["priors"] else None,
               "source": source.source, "target": target.source, "backbone": backbone.name,
               "modality": source.modality, "seconds": time.perf_counter() - started}
    return ShiftReport(summary)
