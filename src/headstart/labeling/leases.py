"""Leases: which items are handed out to whom, until when; kept in the database, so that every
server on it sees them and two servers never hand out the same item at once.

    leases = Leases(store, seconds=600)
    leases.take("ana", ["i3", "i7", "i9"], 2)   # the first two of these that ana may have, now hers
    leases.release("ana", "i3")                 # labeled or skipped: the item is free again

An item that takes one label is leased to one annotator at a time; an item that takes several
annotators may be leased to each of them once. A lease ``seconds`` old is free again (whoever held
it closed the page). Times come from ``clock`` (wall-clock seconds, as every server must agree).

Taking is atomic across processes: takes on one database run one after another, each seeing the
leases of the one before. SQLite: the write transaction starts with ``BEGIN IMMEDIATE``
(:meth:`Store.writing <headstart.labeling.store.Store.writing>`). PostgreSQL: the transaction
first takes one advisory lock, held until it ends. Row locks with ``SKIP LOCKED`` were tried first:
a take then passed over every candidate another take had locked, and came back short or empty
while the other server was deciding (and two takes locking rows in different orders can deadlock).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from headstart.labeling.models import Item, Lease
from headstart.labeling.store import Store

# The key of the PostgreSQL advisory lock that puts takes on one database in a row ("lease" in ASCII).
_TAKING = 0x6C65617365


class Leases:
    """The leases of the items in ``store``; each lease lasts ``seconds`` on ``clock``."""

    def __init__(self, store: Store, *, seconds: float = 600.0, clock: Callable[[], float] = time.time):
        self.store = store
        self.seconds = seconds
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    def _taking(self, session: Session, items: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Wait for the other takes on this database to end; then the items' (store id, labels
        required) by external id."""
        if self.store.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _TAKING})
        query = select(Item.external_id, Item.id, Item.required_labels).where(
            Item.external_id.in_([str(item) for item in items]))
        return {external: (item_id, required) for external, item_id, required in session.execute(query)}

    def take(self, annotator: str, items: Sequence[str], n: int) -> list[str]:
        """Lease to ``annotator`` the first ``n`` of ``items`` (in that order) that nobody else holds (an
        item taking several annotators: that the annotator does not hold); returns their ids."""
        if n <= 0 or not items:
            return []
        now = self._now()
        until = now + timedelta(seconds=self.seconds)
        granted: list[str] = []
        with self.store.writing() as session:
            rows = self._taking(session, items)
            ids = [item_id for item_id, _ in rows.values()]
            session.execute(delete(Lease).where(Lease.item_id.in_(ids), Lease.expires_at <= now))
            holders: dict[int, set[str]] = {}
            for item_id, who in session.execute(select(Lease.item_id, Lease.annotator).where(Lease.item_id.in_(ids))):
                holders.setdefault(item_id, set()).add(who)
            for external in map(str, items):
                if external not in rows:
                    continue  # not an item of the pool
                item_id, required = rows[external]
                held = holders.setdefault(item_id, set())
                if annotator in held or (required <= 1 and held):
                    continue
                session.add(Lease(item_id=item_id, annotator=annotator, expires_at=until))
                held.add(annotator)
                granted.append(external)
                if len(granted) == n:
                    break
        return granted

    def renew(self, annotator: str, item: str) -> None:
        """The annotator's lease on ``item`` runs ``seconds`` from now; they get one if they had none,
        even while someone else holds the item (an undone label gives its item back to its author)."""
        until = self._now() + timedelta(seconds=self.seconds)
        with self.store.writing() as session:
            rows = self._taking(session, [item])
            if str(item) not in rows:
                return
            item_id = rows[str(item)][0]
            lease = session.get(Lease, (item_id, annotator))
            if lease is None:
                session.add(Lease(item_id=item_id, annotator=annotator, expires_at=until))
            else:
                lease.expires_at = until

    def release(self, annotator: str, item: str | None = None) -> None:
        """End the annotator's lease on ``item`` (labeled or skipped), or all their leases (None)."""
        with self.store.writing() as session:
            query = delete(Lease).where(Lease.annotator == annotator)
            if item is not None:
                query = query.where(Lease.item_id.in_(select(Item.id).where(Item.external_id == str(item))))
            session.execute(query)

    def held(self, annotator: str | None = None) -> list[str]:
        """The ids of the items leased now (to ``annotator``, or to anyone), sorted."""
        query = (select(Item.external_id).join(Lease, Lease.item_id == Item.id)
                 .where(Lease.expires_at > self._now()).distinct().order_by(Item.external_id))
        if annotator is not None:
            query = query.where(Lease.annotator == annotator)
        with self.store.reading() as session:
            return list(session.scalars(query))

    def count(self) -> int:
        """How many leases run now, every annotator's."""
        with self.store.reading() as session:
            return session.scalar(select(func.count()).select_from(Lease).where(Lease.expires_at > self._now()))
