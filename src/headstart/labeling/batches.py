"""The next batch of items for a person to label: the choice behind ``label next`` and the web page.

First the items that take several annotators' labels and that others have begun, then, where the
project sets labels apart for judging its models, random ones of those (:mod:`.judging`), then the
strategy's picks (:mod:`.strategies`) among the other items that need a label. Nothing here reads the
whole items table: the probe's probabilities of every item are kept per probe
(:mod:`.pool_scores`), the features are memory-mapped (:mod:`.pool_features`), and only the
picked items' texts are read, so a batch from a million items takes a fraction of a second
(``benchmarks/pool_scale.py``).
"""

from __future__ import annotations

import numpy as np

from headstart.labeling.judging import REASON as JUDGING_REASON
from headstart.labeling.judging import project_share, set_apart
from headstart.labeling.strategies import class_balanced, select
from headstart.labeling.zero_shot_start import is_zero_shot, wants_zero_shot, zero_shot_start

ONLY_PROBABILITIES = ("random", "least-confidence", "margin", "entropy", "class-balanced")


def next_batch(project, n: int, *, strategy: str = "default", annotator: str | None = None,
               seed: int = 0) -> list[dict]:
    """The next ``n`` items for ``annotator``, as :meth:`LabelingProject.next` returns them."""
    records = project.current_labels()  # read once: the store may be large
    done = project.done_for(annotator, records)
    positions, y = project.resolved(records=records)
    labeled = np.zeros(project.size, dtype=bool)
    labeled[positions] = True
    labels = np.full(project.size, -1)
    labels[positions] = y
    started = [int(i) for i in np.flatnonzero((project.required() > 1) & ~done & labeled)]
    picked = started[:n]
    if wants_zero_shot(project):  # the label names' model: pre-labels and the first batch
        zero_shot_start(project, seed=seed)
    head, version = project.probe()
    proba = project.pool_proba(head) if head is not None else None
    candidates = np.flatnonzero(~done & ~labeled)
    rest = n - len(picked)
    # Items set apart for judging are served at random, never by the strategy (:mod:`.judging`).
    judging, candidates, rest = set_apart(project_share(project), labeled, candidates, rest, seed=seed)
    picked += (judging := [int(i) for i in judging])
    # Until two classes are labeled, the zero-shot model picks class-balanced: each class's likeliest items.
    first_batch = proba is not None and len(np.unique(y)) < 2 and is_zero_shot(project.latest_model("probe"))
    if rest > 0 and len(candidates) and first_batch:
        counts = np.bincount(y, minlength=len(project.classes))
        picked += [int(i) for i in class_balanced(proba, candidates, rest, counts)]
    elif rest > 0 and len(candidates):
        features = None if strategy in ONLY_PROBABILITIES and proba is not None else project.features()
        norms = project.squared_norms() if strategy == "badge" and proba is not None else None
        picked += [int(i) for i in select(strategy, rest, proba=proba, features=features, labeled=labeled,
                                          labels=labels, candidates=candidates, seed=seed, sq_norms=norms)]
    out = []
    for i, row in zip(picked, project.rows_at(picked)):
        entry = {"id": row.external_id, "content": row.content, "prediction": None, "confidence": None,
                 "reason": "second annotator" if i in started else JUDGING_REASON if i in judging
                 else "zero-shot start (class-balanced)" if first_batch
                 else strategy if proba is not None else "cold start (diverse items)"}
        if proba is not None:
            entry["prediction"] = project.classes[int(proba[i].argmax())]
            entry["confidence"] = float(proba[i].max())
            entry["model_version"] = version
        out.append(entry)
    return out
