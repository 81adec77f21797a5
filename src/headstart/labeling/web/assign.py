"""Which items go to whom: one shared ranking, handed out in leased batches.

The engine's ``next()`` ranks the whole pool (tens of milliseconds, growing with the labels), so
it is not run for every batch: the server keeps the ranking's top ``window`` items and hands them
out in order, and ranks again when the newest model changes, when the window runs out (at most
every ``min_interval`` seconds: near the end of a pool every batch would otherwise rank), or after
``max_age`` seconds. Before a batch goes out, one query drops the items that got their labels
meanwhile (from this server or from anywhere else).

Each item handed out is *leased* to its annotator for ``lease_seconds``, so people labeling at once
get different items. Leases are soft and live in the server's memory: after a restart an item may
be handed out twice, and the store then refuses the second label (409) rather than losing or
duplicating one. An item that takes several annotators goes to each of them once.
"""

from __future__ import annotations

import threading
import time

from headstart.labeling.project import LabelingProject
from headstart.labeling.strategies import DEFAULT_STRATEGY


class Assignments:
    def __init__(self, project: LabelingProject, *, strategy: str = "default", lease_seconds: float = 600.0,
                 window: int = 1000, max_age: float = 60.0, min_interval: float = 2.0, clock=time.monotonic):
        self.project = project
        self.strategy = DEFAULT_STRATEGY if strategy == "default" else strategy  # the page shows its name
        self.lease_seconds = lease_seconds
        self.window = window
        self.max_age = max_age
        self.min_interval = min_interval
        self.clock = clock
        self._lock = threading.Lock()  # the ranking and the leases change together
        self._ranked: list[dict] = []
        self._ranked_at = -float("inf")
        self._ranked_model: int | None = None
        self._out: dict[str, dict[str, float]] = {}  # item -> {annotator: lease expiry}
        self._skipped: dict[str, set[str]] = {}

    def batch(self, annotator: str, n: int, *, restart: bool = False) -> list[dict]:
        """The next ``n`` items for ``annotator``, leased to them. ``restart`` gives back the items the
        annotator held (a reloaded page has lost them)."""
        with self._lock:
            now = self.clock()
            self._out = {item: kept for item, holders in self._out.items()
                         if (kept := {who: until for who, until in holders.items()
                                      if until > now and not (restart and who == annotator)})}
            latest = self.project.latest_model("probe")
            model = None if latest is None else latest.id
            fresh = model == self._ranked_model and now - self._ranked_at <= self.max_age
            picked = self._pick(annotator, n) if fresh else []
            if not fresh or (len(picked) < n and now - self._ranked_at >= self.min_interval):
                self._ranked = self.project.next(self.window + len(self._out) + len(self._skipped.get(annotator, ())),
                                                 strategy=self.strategy)
                self._ranked_at, self._ranked_model = now, model
                picked = self._pick(annotator, n)
            for entry in picked:
                self._out.setdefault(entry["id"], {})[annotator] = now + self.lease_seconds
            return picked

    def _pick(self, annotator: str, n: int) -> list[dict]:
        """The first ``n`` ranked items the annotator may have; items with all their labels leave the ranking."""
        skipped = self._skipped.get(annotator, set())
        picked, finished = [], set()
        for start in range(0, len(self._ranked), 4 * n):
            chunk = [e for e in self._ranked[start:start + 4 * n] if e["id"] not in skipped
                     and annotator not in self._out.get(e["id"], {})]
            labels = self.project.labeled_by([e["id"] for e in chunk])
            for entry in chunk:
                required, given = labels[entry["id"]]
                people = [who for who, source in given if source != "model"]
                if (required <= 1 and given) or len(people) >= required:
                    finished.add(entry["id"])
                elif (required <= 1 and self._out.get(entry["id"])) or any(who == annotator for who, _ in given):
                    continue  # someone else holds it, or this annotator labeled it already
                else:
                    picked.append(entry)
                    if len(picked) == n:
                        break
            if len(picked) == n:
                break
        if finished:
            self._ranked = [e for e in self._ranked if e["id"] not in finished]
        return picked

    def done(self, annotator: str, item: str) -> None:
        """The annotator labeled the item: their lease ends."""
        with self._lock:
            self._out.get(item, {}).pop(annotator, None)

    def skip(self, annotator: str, item: str) -> None:
        """The annotator passes on the item: it is not shown to them again while the server runs."""
        with self._lock:
            self._out.get(item, {}).pop(annotator, None)
            self._skipped.setdefault(annotator, set()).add(item)

    def back(self, annotator: str, item: str) -> None:
        """An undone label: the item is the annotator's again."""
        with self._lock:
            self._out.setdefault(item, {})[annotator] = self.clock() + self.lease_seconds
            self._skipped.get(annotator, set()).discard(item)
