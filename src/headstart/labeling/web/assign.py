"""Which items are out with which annotator, so that people labeling at the same time get different items.

The engine's ``next()`` ranks the same items for everybody; here each batch is *leased* to the
annotator who fetched it for ``lease_seconds``, and others are handed the next items in the ranking.
Leases are soft and live in the server's memory: after a restart an item may be handed out twice,
and the store then refuses the second label (409) rather than losing or duplicating one. Items that
take several annotators are never leased away (each annotator has a slot of their own).
"""

from __future__ import annotations

import threading
import time

from headstart.labeling.project import LabelingProject
from headstart.labeling.strategies import DEFAULT_STRATEGY


class Assignments:
    def __init__(self, project: LabelingProject, *, strategy: str = "default", lease_seconds: float = 600.0,
                 clock=time.monotonic):
        self.project = project
        self.strategy = DEFAULT_STRATEGY if strategy == "default" else strategy  # the page shows its name
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._lock = threading.Lock()  # next() and the leases change together
        self._out: dict[str, tuple[str, float]] = {}  # item -> (annotator, lease expiry)
        self._skipped: dict[str, set[str]] = {}
        self._shared: set[str] | None = None

    def shared(self) -> set[str]:
        """Items that take several annotators (items never change after init)."""
        if self._shared is None:
            self._shared = {row[1] for row in self.project.table() if row[4] > 1}
        return self._shared

    def batch(self, annotator: str, n: int, *, restart: bool = False) -> list[dict]:
        """The next ``n`` items for ``annotator``, leased to them. ``restart`` gives back the items the
        annotator held (a reloaded page has lost them)."""
        with self._lock:
            now = self.clock()
            self._out = {item: (who, until) for item, (who, until) in self._out.items()
                         if until > now and not (restart and who == annotator)}
            shared = self.shared()
            blocked = {item for item, (who, _) in self._out.items() if who == annotator or item not in shared}
            blocked |= self._skipped.get(annotator, set())
            ranked = self.project.next(n + len(blocked), strategy=self.strategy, annotator=annotator)
            picked = [entry for entry in ranked if entry["id"] not in blocked][:n]
            for entry in picked:
                self._out[entry["id"]] = (annotator, now + self.lease_seconds)
            return picked

    def done(self, item: str) -> None:
        """The item was labeled: its lease ends."""
        with self._lock:
            self._out.pop(item, None)

    def skip(self, annotator: str, item: str) -> None:
        """The annotator passes on the item: it is not shown to them again while the server runs."""
        with self._lock:
            self._out.pop(item, None)
            self._skipped.setdefault(annotator, set()).add(item)

    def back(self, annotator: str, item: str) -> None:
        """An undone label: the item is the annotator's again."""
        with self._lock:
            self._out[item] = (annotator, self.clock() + self.lease_seconds)
            self._skipped.get(annotator, set()).discard(item)
