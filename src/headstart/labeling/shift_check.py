"""Is the pool shifted from the labeled items the project's model trains on?

The labeled items (imported with the pool, or given since) are the source, the unlabeled rest the
target: the same domain classifier and EM priors as ``headstart shift``
(:mod:`headstart.evaluate.shift`, :mod:`headstart.evaluate.priors`), on the project's backbone.
The summary goes into the project's settings (``shift``), where the web page's Shift view reads
it; ``headstart label init`` prints :func:`shift_warning` when the pool is shifted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from headstart.errors import HeadstartError
from headstart.evaluate.priors import UNDER_SHIFT
from headstart.evaluate.shift import MAX_ITEMS, MIN_ITEMS, PERMUTATIONS, shift_test
from headstart.labeling.models import utcnow
from headstart.labeling.store import iso
from headstart.learn.target_priors import balanced_probe_priors

SETTING = "shift"


def check_pool_shift(project, *, seed: int = 0, max_items: int = MAX_ITEMS,
                     permutations: int = PERMUTATIONS) -> dict:
    """Compare the labeled items with the unlabeled ones, store the summary in the project and return it.

    Args:
        project: a :class:`~headstart.labeling.project.LabelingProject`.
        seed: seeds the subsamples, folds, permutations and probe.
        max_items: items a side at most (only these go through the backbone).
        permutations: permutations of the p-value at most.

    Returns:
        The summary of ``headstart shift --json`` (``auc``, ``p_value``, ``shifted``, ``priors``...)
        with ``n_labeled``, ``n_unlabeled`` and ``checked_at``; or ``{"skipped": reason}`` when a
        side has fewer than :data:`~headstart.evaluate.shift.MIN_ITEMS` items or the features
        cannot be computed.
    """
    labeled, ids = project.resolved()
    unlabeled = np.setdiff1d(np.arange(project.size), labeled)
    if len(labeled) < MIN_ITEMS or len(unlabeled) < MIN_ITEMS:
        summary = {"skipped": f"a shift check needs at least {MIN_ITEMS} labeled and {MIN_ITEMS} unlabeled items; "
                              f"the pool has {len(labeled)} and {len(unlabeled)}"}
    else:
        try:
            summary = _measure(project, labeled, ids, unlabeled, seed=seed, max_items=max_items,
                               permutations=permutations)
        except (HeadstartError, ValueError) as error:  # the project stands; only the check is missing
            summary = {"skipped": f"the shift check could not run: {error}"}
    project.update_settings(**{SETTING: summary})
    return summary


def _measure(project, labeled: np.ndarray, ids: np.ndarray, unlabeled: np.ndarray, *, seed: int, max_items: int,
             permutations: int) -> dict:
    rng = np.random.default_rng(seed)
    pick_labeled = np.sort(rng.permutation(len(labeled))[:max_items])
    source, source_ids = labeled[pick_labeled], ids[pick_labeled]
    target = np.sort(rng.permutation(unlabeled)[:max_items])
    features = project.features_at(np.r_[source, target])
    source_x, target_x = features[:len(source)], features[len(source):]
    test = shift_test(source_x, target_x, seed=seed, max_items=max_items, permutations=permutations)
    rows = project.rows_at(np.r_[source, target])  # these items only: the pool may be a million
    # an image's name, never where the server keeps it (the page shows the image through /media/<id>)
    contents = [Path(row.content).name if project.modality == "image" else row.content for row in rows]
    origins = [row.external_id for row in rows]
    summary = test.summary(contents[:len(source)], origins[:len(source)], contents[len(source):],
                           origins[len(source):])
    priors = balanced_probe_priors(source_x, source_ids, target_x, project.classes, seed=seed)
    summary.update(priors)
    if priors["priors"] is not None:
        summary["priors_note"] = UNDER_SHIFT if test.shifted else None
    summary.update(source="labeled items", target="unlabeled items", sides=["labeled", "unlabeled"],
                   backbone=project.backbone,
                   n_labeled=int(len(labeled)), n_unlabeled=int(len(unlabeled)), checked_at=iso(utcnow()))
    return summary


def shift_warning(summary: dict) -> str | None:
    """One line for ``headstart label init`` when the pool is shifted, else None."""
    if not summary.get("shifted"):
        return None
    return (f"warning: the unlabeled pool differs from the labeled items the model trains on (domain classifier "
            f"AUC {summary['auc']:.2f}, p = {summary['p_value']:.2g}): its predictions on the pool may be worse "
            "than its accuracy on the labels says; label some of the pool's most typical items first (the Shift "
            "page of `headstart label serve`)")


def shift_message(summary: dict) -> str:
    """What the page says after a check: the AUC and the verdict, or why it did not run."""
    if "skipped" in summary:
        return summary["skipped"]
    verdict = "the pool differs from the labeled items" if summary["shifted"] else "no shift that matters"
    return (f"checked {summary['n_labeled']} labeled against {summary['n_unlabeled']} unlabeled items: domain "
            f"classifier AUC {summary['auc']:.2f}, p = {summary['p_value']:.2g}; {verdict}")
