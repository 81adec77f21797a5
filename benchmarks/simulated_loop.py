"""The simulated annotator's labeling loop, shared by ``active_learning.py`` and ``label_budget.py``.

A loop starts from some labeled items, then in rounds asks a strategy for the next batch, "labels" it
from the ground truth (the simulated annotator answers with the true label: only the positions
matter here) and refits its model when due. What the model is, how it is fitted and how a batch is
chosen are the caller's (functions passed in), so that one loop serves a probe refitted every batch
(``active_learning.py``) and headstart's labeling project, which refits every ``retrain_every`` labels
and starts from a zero-shot model or none (``label_budget.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from headstart.labeling.retrain import retrain_due


@dataclass
class LoopRun:
    """What one run of the loop did.

    Attributes:
        order: the labeled positions in the order they were labeled (the first ones first).
        choose_seconds: wall seconds spent choosing batches.
        cpu: (labels so far, process CPU seconds since the loop started) after each batch was labeled
            and after each refit: what reaching a number of labels cost, choices and refits included.
        model: the last model.
    """

    order: np.ndarray
    choose_seconds: float
    cpu: list[tuple[int, float]] = field(default_factory=list)
    model: Any = None

    def cpu_at(self, labels: int) -> float | None:
        """CPU seconds the loop had spent when it first held ``labels`` labels (None: never reached)."""
        return next((seconds for n, seconds in self.cpu if n >= labels), None)


def simulate(n_items: int, first, choose: Callable, fit: Callable, *, batch: int, max_labels: int,
             retrain_every: int | None = None, model: Any = None,
             on_model: Callable[[int, Any], None] | None = None) -> LoopRun:
    """Run the loop from the ``first`` labeled positions up to ``max_labels`` labels.

    Args:
        n_items: the pool's size.
        first: positions labeled before any choice.
        choose: ``choose(model, labeled mask, n, round) -> positions`` of the next batch (unlabeled ones).
        fit: ``fit(labeled mask, model) -> model``: the refit (it may return the old model, e.g. while one
            class only is labeled).
        batch: items a round.
        max_labels: the loop stops once this many are labeled (the last batch is cut to fit).
        retrain_every: refit as headstart's project does (``retrain.retrain_due``: every 10 labels up to 50,
            then as the labels grow by a quarter, at most every ``retrain_every``); None: after every batch.
        model: the model before the first refit (a zero-shot model, or None); with None and no
            ``retrain_every`` the loop fits at once on ``first``.
        on_model: called with (labels, model) after each refit.
    """
    started_cpu = time.process_time()
    labeled = np.zeros(n_items, dtype=bool)
    order = [int(i) for i in np.asarray(first)]
    labeled[order] = True
    run = LoopRun(order=np.array([], dtype=np.int64), choose_seconds=0.0)
    fitted_at, rounds = None, 0
    while True:
        count = int(labeled.sum())
        due = (retrain_due(count, fitted_at or 0, retrain_every) if retrain_every else fitted_at is None
               or count - fitted_at >= 1) or count >= max_labels
        if due and fitted_at != count:
            refitted = fit(labeled, model)
            if refitted is not model:  # a refit that could not be made (one class) is tried again next round
                model, fitted_at = refitted, count
                run.cpu.append((count, time.process_time() - started_cpu))
                if on_model is not None:
                    on_model(count, model)
        if count >= max_labels or labeled.all():
            break
        n = int(min(batch, max_labels - count))
        started = time.perf_counter()
        picked = np.asarray(choose(model, labeled, n, rounds), dtype=np.int64)
        run.choose_seconds += time.perf_counter() - started
        rounds += 1
        labeled[picked] = True  # the simulated annotator answers from the ground truth
        order.extend(int(i) for i in picked)
        run.cpu.append((int(labeled.sum()), time.process_time() - started_cpu))
    run.order, run.model = np.asarray(order, dtype=np.int64), model
    return run
