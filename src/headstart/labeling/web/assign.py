"""Which items go to whom: one shared ranking, handed out in leased batches.

The engine's ``next()`` ranks the whole pool (tens of milliseconds, growing with the labels), so
it is not run for every batch: the server keeps the ranking's top ``window`` items and hands them
out in order, and ranks again when the newest model changes, when the window runs out (at most
every ``min_interval`` seconds: near the end of a pool every batch would otherwise rank), or after
``max_age`` seconds. Before a batch goes out, one query drops the items that got their labels
meanwhile (from this server or from anywhere else).

Each item handed out is *leased* to its annotator for ``lease_seconds``, so people labeling at once
get different items. Leases live in the database (:mod:`headstart.labeling.leases`): they outlast a
restart, and two servers on one database never hand out the same item at once. An item that takes
several annotators goes to each of them once. Skipped items are this server's memory only.
"""

from __future__ import annotations

import threading
import time

from headstart.labeling.leases import Leases
from headstart.labeling.project import LabelingProject
from headstart.labeling.strategies import DEFAULT_STRATEGY


class Assignments:
    def __init__(self, project: LabelingProject, *, strategy: str = "default", lease_seconds: float = 600.0,
                 window: int = 1000, max_age: float = 60.0, min_interval: float = 2.0, clock=time.time):
        self.project = project
        self.strategy = DEFAULT_STRATEGY if strategy == "default" else strategy  # the page shows its name
        self.lease_seconds = lease_seconds
        self.window = window
        self.max_age = max_age
        self.min_interval = min_interval
        self.clock = clock
        self.leases = Leases(project.store, seconds=lease_seconds, clock=clock)
        self._lock = threading.Lock()  # one ranking at a time in this server
        self._ranked: list[dict] = []
        self._ranked_at = -float("inf")
        self._ranked_model: int | None = None
        self._skipped: dict[str, set[str]] = {}

    def batch(self, annotator: str, n: int, *, restart: bool = False) -> list[dict]:
        """The next ``n`` items for ``annotator``, leased to them. ``restart`` gives back the items the
        annotator held (a reloaded page has lost them)."""
        with self._lock:
            if restart:
                self.leases.release(annotator)
            now = self.clock()
            latest = self.project.latest_model("probe")
            model = None if latest is None else latest.id
            fresh = model == self._ranked_model and now - self._ranked_at <= self.max_age
            picked = self._pick(annotator, n) if fresh else []
            if not fresh or (len(picked) < n and now - self._ranked_at >= self.min_interval):
                others = self.leases.count() + len(self._skipped.get(annotator, ()))  # items it may pass over
                self._ranked = self.project.next(self.window + others, strategy=self.strategy)
                self._ranked_at, self._ranked_model = now, model
                picked += self._pick(annotator, n - len(picked))  # those picked are leased: not picked twice
            return picked

    def _pick(self, annotator: str, n: int) -> list[dict]:
        """The first ``n`` ranked items the annotator may have, leased to them; items with all their labels
        leave the ranking."""
        skipped = self._skipped.get(annotator, set())
        picked, finished, step = [], set(), 4 * n
        for start in range(0, len(self._ranked), step):
            chunk = [e for e in self._ranked[start:start + step] if e["id"] not in skipped]
            labels = self.project.labeled_by([e["id"] for e in chunk])
            open_items = []
            for entry in chunk:
                required, given = labels[entry["id"]]
                people = [who for who, source in given if source != "model"]
                if (required <= 1 and given) or len(people) >= required:
                    finished.add(entry["id"])
                elif not any(who == annotator for who, _ in given):  # not labeled by this annotator already
                    open_items.append(entry)
            # the leases decide, in the database, which of the open items nobody else holds
            granted = set(self.leases.take(annotator, [e["id"] for e in open_items], n - len(picked)))
            picked += [entry for entry in open_items if entry["id"] in granted]
            if len(picked) == n:
                break
        if finished:
            self._ranked = [e for e in self._ranked if e["id"] not in finished]
        return picked

    def done(self, annotator: str, item: str) -> None:
        """The annotator labeled the item: their lease ends."""
        self.leases.release(annotator, item)

    def skip(self, annotator: str, item: str) -> None:
        """The annotator passes on the item: it is not shown to them again while the server runs."""
        self.leases.release(annotator, item)
        with self._lock:
            self._skipped.setdefault(annotator, set()).add(item)

    def back(self, annotator: str, item: str) -> None:
        """An undone label: the item is the annotator's again."""
        self.leases.renew(annotator, item)
        with self._lock:
            self._skipped.get(annotator, set()).discard(item)
