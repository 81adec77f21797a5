"""A pool's features extracted by several processes or machines, each writing cache shards of its own.

The pool's distinct items, in the order they first appear, are cut into batches exactly as one
process cuts them (:func:`~headstart.features.extract.batches_in_length_order`: texts by length), and
rank r of w takes batches r, r + w, r + 2w... The shares are disjoint, cover the pool, differ by at
most one batch, interleave short and long texts so that no rank gets all the long ones, and every
process computes the same split from the same file without talking to the others. Because every
batch holds the same items as in one process, each item is computed with the same padding and the
same matrix shapes, so the merged features equal one process's bit for bit.

Each process writes its features as shard files of about ``chunk`` items into the backbone's cache
folder (:func:`headstart.features.cache.write_shard`: a name of its own, written to a hidden
temporary file, flushed and renamed), so no two processes ever write the same file and a killed
process leaves only whole shards. A process started again skips the batches already cached (in the
index, or in a shard not indexed yet): an interrupted share resumes where it stopped, at most one
chunk lost. A batch partly cached (by an earlier run of other items) is computed whole, for the
same bits, and only its missing rows are written.

Why the processes write no index, and one merge indexes their shards: the index is an SQLite
database, the one file all writers would share. SQLite's locks are not reliable on network file
systems (https://www.sqlite.org/faq.html#q5), and its WAL mode needs every process on one machine
(https://www.sqlite.org/wal.html), while shard files named apart and renamed into place are safe on
any file system. So the workers only add files, and :func:`merge_shards` (``headstart extract
--merge``, or rank 0 at the end of an ``accelerate launch``) indexes them in one process. Until then
a reader still sees every shard, because opening a :class:`FeatureCache` indexes the shards it lacks;
the merge only makes that happen once, in one place, and says what the cache holds.
"""

from __future__ import annotations

import functools
import sqlite3
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from headstart.backbones.base import Backbone
from headstart.features.cache import INDEX_NAME, FeatureCache, write_shard
from headstart.features.extract import batches_in_length_order, forward_function, prefetched
from headstart.features.ranks import Rank
from headstart.output import atomic_path
from headstart.progress import progress_bar

CHUNK = 2048  # items a shard file: what a killed process loses at most, and a file per this many items
_LOOKUP_CHUNK = 500  # hashes per "IN (...)" query, under every SQLite's variable limit


@dataclass(frozen=True)
class ShareReport:
    """What one process did with its share.

    Attributes:
        rank: the process's rank (``r/w``).
        pool: distinct items in the pool.
        share: distinct items of this rank's share.
        cached: of those, the ones already cached when it started (by an earlier run, say).
        computed: the ones it computed and wrote.
        shards: shard files it wrote.
        seconds: time from the first forward pass to the last shard written.
    """

    rank: str
    pool: int
    share: int
    cached: int
    computed: int
    shards: int
    seconds: float

    @property
    def items_per_second(self) -> float:
        """Computed items a second (0 when nothing was computed)."""
        return self.computed / self.seconds if self.computed and self.seconds > 0 else 0.0

    def line(self) -> str:
        """One line for people (and for benchmarks/sharded_extraction.py, which reads it)."""
        return (f"rank {self.rank}: {self.share} of {self.pool} items, {self.cached} already cached, "
                f"{self.computed} computed in {self.seconds:.1f} s ({self.items_per_second:.1f} items/s), "
                f"{self.shards} shard files")


@dataclass(frozen=True)
class Share:
    """One rank's part of a pool.

    Attributes:
        items: the pool's distinct items, in the order they first appear (all ranks' alike).
        hashes: their content hashes.
        batches: this rank's batches, positions in ``items``.
    """

    items: list[str]
    hashes: list[str]
    batches: list[np.ndarray]

    @property
    def size(self) -> int:
        """Items in this rank's batches."""
        return sum(len(batch) for batch in self.batches)


def share_of(items: Sequence[str], hashes: Sequence[str], modality: str, rank: int, world: int,
             batch_size: int = 64) -> Share:
    """Rank ``rank`` of ``world``'s share of a pool: batches ``rank``, ``rank + world``... of one process's.

    Args:
        items: the pool's texts or image paths, repeats allowed (a repeat is computed once).
        hashes: their content hashes.
        modality: ``text`` (batches by length) or ``image``.
        rank: 0 to ``world - 1``.
        world: how many processes share the pool.
        batch_size: items a forward pass.

    Raises:
        ValueError: ``rank`` is not in ``0 .. world - 1``.
    """
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} of world size {world}")
    first = dict(zip(hashes, items))
    distinct = list(first.values())
    batches = batches_in_length_order(distinct, modality, batch_size)
    return Share(distinct, list(first), batches[rank::world])


def cached_among(folder: Path, hashes: Sequence[str]) -> set[str]:
    """Those of ``hashes`` whose features lie in a shard of ``folder``, the index left unwritten.

    Reads the index read-only where it can, then the hash lists of the shard files it does not list
    (written since the last merge). An index that cannot be read counts as empty: every shard's
    hash list is read instead. A shard that cannot be read counts as absent: its items are computed again.
    """
    if not folder.is_dir() or not hashes:
        return set()
    wanted = set(hashes)
    found, indexed = _indexed_among(folder / INDEX_NAME, list(wanted))
    for path in sorted(folder.glob("shard-*.npz")):
        if path.name in indexed or len(found) == len(wanted):
            continue
        try:
            with np.load(path) as data:
                found.update(wanted.intersection(data["hashes"].tolist()))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            continue
    return found


def _indexed_among(index: Path, hashes: list[str]) -> tuple[set[str], set[str]]:
    """(those of ``hashes`` the index lists, the shard names it lists); empty when it cannot be read."""
    if not index.is_file():
        return set(), set()
    try:
        db = sqlite3.connect(f"{index.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return set(), set()
    try:
        names = {row[0] for row in db.execute("SELECT name FROM shards")}
        found: set[str] = set()
        for start in range(0, len(hashes), _LOOKUP_CHUNK):
            chunk = hashes[start:start + _LOOKUP_CHUNK]
            query = f"SELECT hash FROM entries WHERE hash IN ({','.join('?' * len(chunk))})"
            found.update(row[0] for row in db.execute(query, chunk))
        return found, names
    except sqlite3.Error:  # not a database, another schema, locked too long: derived data, read the shards
        return set(), set()
    finally:
        db.close()


def extract_share(backbone: Backbone, items: Sequence[str], hashes: Sequence[str], rank: Rank, *,
                  cache_dir: str | Path, engine: str = "auto", batch_size: int = 64,
                  chunk: int = CHUNK) -> ShareReport:
    """Compute and write the features of this rank's share of ``items`` not cached yet.

    Args:
        backbone: the frozen backbone.
        items: the pool's texts or image paths, repeats allowed.
        hashes: their content hashes.
        rank: this process's rank; rank 0 also writes the backbone's description.
        cache_dir: the cache folder, the same for every rank (shared storage across machines).
        engine: ``auto``, ``onnx`` or ``torch`` (see :func:`forward_function`).
        batch_size: items a forward pass, the same for every rank.
        chunk: items a shard file, about (whole batches).

    Returns:
        What was done, with the items a second of the computing.
    """
    share = share_of(items, hashes, backbone.modality, rank.rank, rank.world, batch_size)
    folder = Path(cache_dir) / "features" / backbone.fingerprint()[:24]
    done = cached_among(folder, [share.hashes[i] for batch in share.batches for i in batch.tolist()])
    todo = [batch for batch in share.batches if any(share.hashes[i] not in done for i in batch.tolist())]
    if rank.is_main:
        _describe(folder, backbone)
    report = functools.partial(ShareReport, str(rank), len(share.items), share.size, len(done))
    # Rank 0 exports the ONNX graph once; the others then load it. Every rank enters, work or none:
    # Accelerate's barriers pair up by count, and a rank that skipped one would pair the others'
    # next barrier with the wrong one (rank 0 would merge while they still compute).
    with rank.main_first():
        forward = forward_function(backbone, engine, cache_dir)[0] if todo else None
    if not todo:
        return report(0, 0, 0.0)
    started = time.perf_counter()
    computed, written = _compute_in_chunks(backbone, forward, share, todo, done, folder, chunk,
                                           description=f"features, share {rank} ({backbone.name})")
    return report(computed, written, time.perf_counter() - started)


def _compute_in_chunks(backbone: Backbone, forward: Callable[[dict], np.ndarray], share: Share,
                       batches: list[np.ndarray], done: set[str], folder: Path, chunk: int,
                       description: str) -> tuple[int, int]:
    """Forward passes over ``batches`` of the share, the rows not ``done`` written every ``chunk`` items.

    Returns:
        (rows written, shard files written).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows_hashes: list[str] = []
    rows: list[np.ndarray] = []
    computed, written = 0, 0

    def flush() -> None:
        nonlocal written
        write_shard(folder, rows_hashes, np.ascontiguousarray(np.concatenate(rows), dtype=np.float32))
        rows_hashes.clear()
        rows.clear()
        written += 1

    with progress_bar(description, sum(len(batch) for batch in batches)) as advance:
        for batch, inputs in zip(batches, prefetched(backbone.preprocess, share.items, batches)):
            features = np.asarray(forward(inputs), dtype=np.float32)
            keep = [k for k, i in enumerate(batch.tolist()) if share.hashes[i] not in done]
            rows_hashes.extend(share.hashes[i] for i in batch[keep].tolist())
            rows.append(features[keep])
            computed += len(keep)
            advance(len(batch))
            if len(rows_hashes) >= chunk:
                flush()
        if rows_hashes:
            flush()
    return computed, written


def _describe(folder: Path, backbone: Backbone) -> None:
    """Write what the backbone is beside its shards, once (rank 0 only: no two processes write one file)."""
    import json

    path = folder / "backbone.json"
    if not path.exists():
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(backbone.describe(), indent=2), encoding="utf-8")


@dataclass(frozen=True)
class MergedCache:
    """One backbone's cache folder after a merge.

    Attributes:
        folder: the backbone's cache folder.
        name: the backbone's name, where its description says it.
        items: the items with features.
        shards: the shard files.
    """

    folder: Path
    name: str
    items: int
    shards: int

    def line(self) -> str:
        """One line for people."""
        return f"{self.name}: {self.items} items in {self.shards} shard files ({self.folder})"


def merge_shards(cache_dir: str | Path, fingerprint: str | None = None) -> list[MergedCache]:
    """Index the shard files the processes wrote, in this one process; readers then only read.

    Args:
        cache_dir: the cache folder.
        fingerprint: one backbone's fingerprint; None: every backbone's folder under ``features/``.

    Returns:
        Each merged folder, with what it holds.
    """
    import json

    root = Path(cache_dir) / "features"
    if fingerprint is not None:
        folders = [root / fingerprint[:24]]
    else:
        folders = sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else []
    merged = []
    for folder in folders:
        if not folder.is_dir():
            continue
        cache = FeatureCache(cache_dir, folder.name)  # opening indexes the shards the index lacks
        try:
            name = json.loads((folder / "backbone.json").read_text(encoding="utf-8"))["name"]
        except (OSError, ValueError, KeyError, TypeError):
            name = folder.name
        merged.append(MergedCache(folder, str(name), len(cache), len(list(folder.glob("shard-*.npz")))))
    return merged
