"""Writing a pool's items into the store a batch at a time: ``executemany`` on SQLite, ``COPY`` on PostgreSQL.

A million items as one ``INSERT`` of SQLAlchemy dicts held the whole pool (and SQLAlchemy's
parameter copies of it) at once; here each batch of :class:`~headstart.labeling.pool_stream.PoolBatch`
goes to the database as it is read and is dropped, all in the caller's one transaction, so a bad
row anywhere (or a kill) leaves nothing behind. Items get the ids 1..n in pool order: an item's
position in the project's arrays (its features' row) is its id - 1.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable

import numpy as np
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from headstart.errors import LabelingError
from headstart.labeling.models import Item, Label, Project, utcnow
from headstart.labeling.pool import parse_label_set
from headstart.labeling.pool_stream import PoolBatch, find_duplicate
from headstart.progress import progress_bar

ITEM_COLUMNS = ("id", "external_id", "content", "content_hash", "origin", "required_labels")


@dataclass
class Loaded:
    """What :func:`write_items` wrote: items, items that take several labels, the given labels by name."""

    items: int = 0
    multi: int = 0
    given: Counter = field(default_factory=Counter)


class DuplicateId(Exception):
    """The store's unique index refused an external id (the caller names the two rows)."""


def write_project(store, pool, batches, *, classes, labels, modality: str, source: str, backbone: str,
                  name: str | None, multi_share: float, annotators_per_item: int, seed: int, columns: dict,
                  rows: int, settings: dict) -> None:
    """The project and its items in one transaction, the items written as they are read (:func:`write_items`).

    ``classes`` None: the label set is the labels the pool gives (``labels`` is None), checked at the
    end; ``rows``: the progress bar's total; ``settings``: the project's, ``multi_items`` added.
    Raises DataError (an id twice, naming both rows) or LabelingError; nothing is written then."""
    now = utcnow()
    try:
        with store.writing() as session, progress_bar("storing the pool's items", rows) as advance:
            loaded = write_items(session, store.dialect, batches, classes=classes, multi_share=multi_share,
                                 annotators_per_item=annotators_per_item, rng=np.random.default_rng(seed),
                                 annotator=f"import:{Path(source).name}", created_at=now, progress=advance)
            if classes is None:
                classes = parse_label_set(labels, loaded.given)
            settings = {**settings, "multi_items": loaded.multi}
            session.add(Project(id=1, name=name or Path(str(pool)).stem, modality=modality, classes=classes,
                                backbone=backbone, source=source, created_at=now, settings=settings))
            if store.dialect == "postgresql":  # explicit ids leave PostgreSQL's sequences behind
                for table in ("project", "items"):
                    session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                         f"(SELECT max(id) FROM {table}))"))
    except DuplicateId:
        raise find_duplicate(pool, **columns) or LabelingError(
            "an id appears twice", where=str(pool), fix="make the ids unique") from None


def write_items(session: Session, dialect: str, batches: Iterable[PoolBatch], *, classes: list[str] | None,
                multi_share: float, annotators_per_item: int, rng: np.random.Generator, annotator: str,
                created_at: datetime, progress=None) -> Loaded:
    """Write the items and their given labels (source ``import``) batch by batch, in ``session``'s transaction.

    Args:
        classes: the label set, to check each given label against; None when the label set is
            the labels the pool holds (the caller checks it afterwards from ``Loaded.given``).
        multi_share, annotators_per_item: a share of the items takes this many annotators'
            labels, drawn from ``rng`` in pool order (the same draws as one call for the pool).
        annotator: who the given labels are by.
        progress: ``advance(n)`` of a progress bar, called after each batch.

    Raises:
        LabelingError: a given label outside ``classes``, naming its row.
        DuplicateId: an id appears twice.
    """
    loaded = Loaded()
    for batch in batches:
        first = loaded.items + 1
        required = np.where(rng.random(len(batch)) < multi_share, annotators_per_item, 1)
        rows = [(first + i, item_id, content, content_hash, origin, int(r)) for i, (item_id, content, content_hash,
                origin, r) in enumerate(zip(batch.ids, batch.items, batch.hashes, batch.origins, required))]
        try:
            _insert(session, dialect, rows)
        except IntegrityError as error:
            raise DuplicateId() from error
        imported = []
        for i, (label, origin) in enumerate(zip(batch.labels, batch.origins)):
            if not label:
                continue
            if classes is not None and label not in classes:
                raise LabelingError(f"label '{label}' is not in the label set", where=origin,
                                    fix=f"use one of: {', '.join(classes)}, or add it to --labels")
            loaded.given[label] += 1
            imported.append({"item_id": first + i, "label": label, "annotator": annotator, "source": "import",
                             "slot": "" if required[i] <= 1 else annotator, "created_at": created_at})
        if imported:
            session.execute(insert(Label), imported)
        loaded.items += len(batch)
        loaded.multi += int((required > 1).sum())
        if progress is not None:
            progress(len(batch))
    return loaded


def _insert(session: Session, dialect: str, rows: list[tuple]) -> None:
    connection = session.connection()
    if dialect == "postgresql":
        # COPY streams the rows in one round trip (see benchmarks/pool_scale.py for its rate)
        try:
            with connection.connection.driver_connection.cursor() as cursor:
                with cursor.copy(f"COPY items ({', '.join(ITEM_COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        except Exception as error:  # psycopg's own, not wrapped by SQLAlchemy: unique_violation is 23505
            if getattr(error, "sqlstate", None) == "23505":
                raise DuplicateId() from error
            raise
    elif dialect == "sqlite":
        connection.exec_driver_sql(f"INSERT INTO items ({', '.join(ITEM_COLUMNS)}) "
                                   f"VALUES ({', '.join('?' for _ in ITEM_COLUMNS)})", rows)
    else:
        session.execute(insert(Item), [dict(zip(ITEM_COLUMNS, row)) for row in rows])
