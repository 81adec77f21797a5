"""Reads of a big pool's items that never hold the whole items table: by id, a page at a time,
or only the items that take several labels.

``Store.item_table`` reads every item's text (a million items: about a gigabyte of Python
strings); ``label next`` on such a pool needs a few of them, so it reads these instead. Items have
the ids 1..n in pool order (:mod:`~headstart.labeling.pool_load`): position = id - 1.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from sqlalchemy import select

from headstart.labeling.models import Item
from headstart.labeling.store import ItemRow, Store

LOOKUP_CHUNK = 500  # ids a query, under every database's parameter limit


def items_at(store: Store, ids: Sequence[int]) -> list[ItemRow]:
    """The items with these store ids, in the order given (repeats allowed)."""
    unique = sorted({int(i) for i in ids})
    found: dict[int, ItemRow] = {}
    with store.reading() as session:
        for start in range(0, len(unique), LOOKUP_CHUNK):
            rows = session.execute(select(Item.id, Item.external_id, Item.content, Item.content_hash,
                                          Item.required_labels)
                                   .where(Item.id.in_(unique[start:start + LOOKUP_CHUNK]))).all()
            found.update((row[0], ItemRow(*row)) for row in rows)
    return [found[int(i)] for i in ids]


def multi_items(store: Store) -> tuple[np.ndarray, np.ndarray]:
    """(ids, labels each takes) of the items that take more than one label."""
    with store.reading() as session:
        rows = session.execute(select(Item.id, Item.required_labels).where(Item.required_labels > 1)).all()
    ids = np.array([row[0] for row in rows], dtype=np.int64)
    return ids, np.array([row[1] for row in rows], dtype=np.int64)


def item_pages(store: Store, rows: int = 20_000) -> Iterator[list[tuple[int, str, str]]]:
    """(id, content, content hash) of every item in id order, ``rows`` at a time (keyset pages:
    each page is one indexed query, whatever the pool's size)."""
    last = 0
    while True:
        with store.reading() as session:
            page = session.execute(select(Item.id, Item.content, Item.content_hash).where(Item.id > last)
                                   .order_by(Item.id).limit(rows)).all()
        if not page:
            return
        yield [tuple(row) for row in page]
        last = page[-1][0]
