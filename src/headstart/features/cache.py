"""Frozen-backbone features on disk, content-addressed by backbone fingerprint and item hash.

A second run with another head, seed or more items reads what is there and computes only the
items it has not seen. Opening the cache and reading n items costs about n row reads, whatever
the cache holds: an SQLite index maps each item hash to (shard, row), and the rows are read from
only the shards that hold them, neighbours in one read.

One backbone's folder holds:

- ``shard-<uuid>.npz``, one per write: arrays ``hashes`` (n,) and ``features`` (n, d) float32,
  stored uncompressed (``np.savez``) so that rows of ``features`` can be read in place.
  Each is written to a hidden temporary name and renamed, so a killed run never leaves a
  half-written shard behind.
- ``index.sqlite``: the shards indexed so far and hash -> (shard, row). It is derived from the
  shards: a shard it lacks (a run killed between the rename and the index update, or a cache
  written before the index existed) is indexed at the next open, one that cannot be read is left
  out (and tried again at the next open); an entry whose shard is gone or cut short counts as
  missing, so its item is computed again; an index that is not a database is rebuilt.
- ``backbone.json``: what the backbone is, for people.

Several processes may write to one folder at once: shard names never collide and SQLite
serializes the index updates, so no writer loses another's entries.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import struct
import time
import uuid
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from headstart.paths import mark_used

INDEX_NAME = "index.sqlite"
_SCHEMA_VERSION = 2  # another version's index is dropped and rebuilt from the shards
_SCHEMA = """
CREATE TABLE IF NOT EXISTS shards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: other processes remember ids
    name TEXT UNIQUE NOT NULL,
    rows INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    offset INTEGER NOT NULL    -- byte offset of the features matrix inside the .npz
);
CREATE TABLE IF NOT EXISTS entries (
    hash TEXT PRIMARY KEY,
    shard INTEGER NOT NULL,
    row INTEGER NOT NULL
) WITHOUT ROWID;
"""
_INDEX_CACHE_KIB = 64 << 10  # SQLite's page cache, filled only as pages are used (default: 2 MB)
_LOOKUP_CHUNK = 500  # hashes per "IN (...)" query, under every SQLite's variable limit
_BUSY_SECONDS = 120.0  # how long a writer waits for another's index update
_ADOPT_ROWS = 200_000  # rows indexed per transaction when shards are indexed at open
_STALE_TEMPORARY_SECONDS = 24 * 3600  # a temporary shard this old belongs to a killed run
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip local file header, as in the zip spec
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
_GAP_BYTES = 64 << 10  # rows closer than this are read in one go, the ones between thrown away
_SPAN_BYTES = 8 << 20  # the most one read takes, so that a big shard is never read whole at once


class Shard(NamedTuple):
    """Where one shard's feature matrix lies in its file."""

    name: str
    rows: int
    dim: int
    offset: int

    @property
    def end(self) -> int:
        """The file size the matrix needs: a shorter file was truncated."""
        return self.offset + self.rows * self.dim * 4


def _is_shard(name: str) -> bool:
    return name.startswith("shard-") and name.endswith(".npz")


def _is_temporary(name: str) -> bool:
    return name.startswith(".shard-") and name.endswith(".tmp.npz")


def read_layout(path: Path, name: str) -> Shard:
    """Where the ``features`` matrix lies inside an uncompressed ``.npz`` shard.

    Args:
        path: the shard file.
        name: its name in the cache folder, kept in the result and in error messages.

    Returns:
        The shard's rows, width and the byte offset of the matrix.

    Raises:
        ValueError: the file is not an uncompressed .npz with a 2-D, C-order float32 ``features``
            array, or it is truncated.
        zipfile.BadZipFile: the file is not a zip archive (or lost its end).
    """
    with open(path, "rb") as handle:
        with zipfile.ZipFile(handle) as archive:
            info = archive.getinfo("features.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{name}: features are compressed and cannot be read in place")
        handle.seek(info.header_offset)
        header = handle.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size:
            raise ValueError(f"{name}: truncated")
        fields = _LOCAL_HEADER.unpack(header)
        if fields[0] != _LOCAL_HEADER_SIGNATURE:
            raise ValueError(f"{name}: no local header where the zip directory says")
        # The local header's own name and extra lengths (numpy adds a zip64 extra field here).
        handle.seek(info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1])
        version = np.lib.format.read_magic(handle)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f"{name}: .npy format {version} is not supported")
        shape, fortran, dtype = readers[version](handle)
        offset = handle.tell()
        size = os.fstat(handle.fileno()).st_size
    if len(shape) != 2 or dtype != np.dtype("<f4") or fortran:
        raise ValueError(f"{name}: features are {dtype} {shape}, not a C-order float32 matrix")
    shard = Shard(name, int(shape[0]), int(shape[1]), offset)
    if size < shard.end:
        raise ValueError(f"{name}: truncated ({size} of {shard.end} bytes)")
    return shard


def read_rows(path: Path, shard: Shard, rows: list[int]) -> np.ndarray:
    """Rows of a shard's feature matrix, reading only the byte ranges that hold them.

    Rows close to each other (``_GAP_BYTES``) are read with one call, up to ``_SPAN_BYTES`` a call.

    Args:
        path: the shard file.
        shard: its layout, from :func:`read_layout`.
        rows: row numbers, repeats allowed.

    Returns:
        float32 (len(rows), dim): the rows in the order given.

    Raises:
        ValueError: the file ends before a row.
    """
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    width = shard.dim * 4
    span = ordered * width // _SPAN_BYTES
    cut = ((ordered[1:] - ordered[:-1]) * width > _GAP_BYTES) | (span[1:] != span[:-1])
    starts = np.concatenate(([0], np.flatnonzero(cut) + 1, [len(ordered)]))
    out = np.empty((len(rows), shard.dim), dtype=np.float32)
    fd = os.open(path, os.O_RDONLY)
    try:
        for start, end in zip(starts[:-1].tolist(), starts[1:].tolist()):
            first, count = int(ordered[start]), int(ordered[end - 1] - ordered[start]) + 1
            data = os.pread(fd, count * width, shard.offset + first * width)
            if len(data) != count * width:
                raise ValueError(f"{shard.name}: ends before row {first + count - 1}")
            block = np.frombuffer(data, dtype="<f4").reshape(count, shard.dim)
            out[order[start:end]] = block[ordered[start:end] - first]
    finally:
        os.close(fd)
    return out


def write_shard(folder: Path, hashes: list[str], features: np.ndarray) -> str:
    """Write one shard under a temporary name, flush it to disk and rename it.

    Args:
        folder: the backbone's cache folder.
        hashes: item content hashes, one per row.
        features: (n, d) float32, C order.

    Returns:
        The shard's file name in ``folder``.
    """
    name = f"shard-{uuid.uuid4().hex}.npz"
    temporary = folder / f".{name[:-4]}.tmp.npz"
    try:
        with open(temporary, "wb") as handle:
            np.savez(handle, hashes=np.array(hashes), features=features)
            handle.flush()
            os.fsync(handle.fileno())  # the rename must not reach the disk before the data
        os.replace(temporary, folder / name)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return name


class FeatureCache:
    """Feature vectors of one backbone, keyed by item content hash.

    Args:
        root: the cache folder (shared by all backbones).
        fingerprint: the backbone's :meth:`~headstart.backbones.Backbone.fingerprint`.
        description: what the backbone is, written once beside the shards for people.
    """

    def __init__(self, root: str | Path, fingerprint: str, description: dict | None = None):
        self.folder = Path(root) / "features" / fingerprint[:24]
        self._description = description
        self._db: sqlite3.Connection | None = None
        self._shards: dict[int, Shard] = {}
        self._readable: dict[int, bool] = {}  # shards checked so far
        self._places: dict[str, tuple[int, int]] = {}  # hashes located so far: get() after missing()
        if self.folder.is_dir():
            mark_used(self.folder)
            self._open_index()
            self._reconcile()

    def __del__(self):
        if getattr(self, "_db", None) is not None:
            self._db.close()

    def __len__(self) -> int:
        if self._db is None:
            return 0
        return self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def missing(self, hashes: list[str]) -> list[str]:
        """The hashes that have no cached features.

        Args:
            hashes: item content hashes, repeats allowed.

        Returns:
            Those without features in a readable shard, unique, in first-seen order.
        """
        found = self._locate(hashes)
        return [h for h in dict.fromkeys(hashes) if h not in found]

    def get(self, hashes: list[str]) -> np.ndarray:
        """Cached features, reading only the shards that hold them.

        Args:
            hashes: item content hashes, repeats allowed; every one must be cached.

        Returns:
            float32 (n, d): the features of ``hashes`` in that order.

        Raises:
            KeyError: a hash has no cached features.
        """
        found = self._locate(hashes)
        absent = [h for h in hashes if h not in found]
        if absent:
            raise KeyError(f"{len(absent)} hashes have no cached features, the first {absent[0]!r}")
        dims = {self._shards[shard].dim for shard, _ in found.values()}
        if len(dims) > 1:
            raise ValueError(f"cached features in {self.folder} have several widths: {sorted(dims)}")
        out = np.empty((len(hashes), dims.pop() if dims else 0), dtype=np.float32)
        by_shard: dict[int, tuple[list[int], list[int]]] = {}
        for position, item_hash in enumerate(hashes):
            shard, row = found[item_hash]
            positions, rows = by_shard.setdefault(shard, ([], []))
            positions.append(position)
            rows.append(row)
        for shard, (positions, rows) in by_shard.items():
            out[positions] = read_rows(self.folder / self._shards[shard].name, self._shards[shard], rows)
        return out

    def put(self, hashes: list[str], features: np.ndarray) -> None:
        """Store features as one new shard and index it.

        Args:
            hashes: item content hashes, one per row.
            features: (n, d) features, stored as float32.
        """
        if not hashes:
            return
        features = np.ascontiguousarray(features, dtype=np.float32)
        if features.ndim != 2 or len(features) != len(hashes):
            raise ValueError(f"features of shape {features.shape} for {len(hashes)} hashes")
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._description is not None and not (self.folder / "backbone.json").exists():
            (self.folder / "backbone.json").write_text(json.dumps(self._description, indent=2))
        if self._db is None:
            self._open_index()
        name = write_shard(self.folder, list(hashes), features)
        self._index([(read_layout(self.folder / name, name), list(hashes))])

    # -- the index ------------------------------------------------------------------------------

    def _open_index(self) -> None:
        """Connect to the index, creating it, or recreating it when it is not a database."""
        path = self.folder / INDEX_NAME
        for attempt in range(2):
            db = None
            try:
                db = sqlite3.connect(path, timeout=_BUSY_SECONDS, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")  # readers do not wait for a writer
                db.execute("PRAGMA synchronous=NORMAL")  # a lost index update is re-derived from shards
                db.execute(f"PRAGMA cache_size = -{_INDEX_CACHE_KIB}")
                self._db = db
                self._create_tables()
                return
            except sqlite3.DatabaseError:
                if attempt:
                    raise
                if db is not None:
                    db.close()
                for suffix in ("", "-wal", "-shm"):  # derived data: rebuilt from the shards
                    Path(f"{path}{suffix}").unlink(missing_ok=True)

    def _create_tables(self) -> None:
        """Create the tables, or recreate them when they are another version's."""
        if self._db.execute("PRAGMA user_version").fetchone()[0] == _SCHEMA_VERSION:
            return
        with self._transaction() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:  # not done meanwhile
                db.execute("DROP TABLE IF EXISTS entries")
                db.execute("DROP TABLE IF EXISTS shards")
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _transaction(self):
        """A write transaction that takes the lock at once (others wait up to _BUSY_SECONDS)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _load_shards(self) -> None:
        self._shards = {row[0]: Shard(*row[1:]) for row in
                        self._db.execute("SELECT id, name, rows, dim, offset FROM shards")}

    def _reconcile(self) -> None:
        """Index the shards the index lacks and forget those whose file is gone."""
        self._load_shards()  # before listing the folder: a shard indexed after it is listed too
        on_disk = set()
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if _is_shard(entry.name):
                    on_disk.add(entry.name)
                elif _is_temporary(entry.name):
                    self._remove_if_stale(entry)
        indexed = {shard.name: shard_id for shard_id, shard in self._shards.items()}
        self._adopt(sorted(on_disk - indexed.keys()))
        for name in indexed.keys() - on_disk:
            self._forget(indexed[name])

    @staticmethod
    def _remove_if_stale(entry: os.DirEntry) -> None:
        """Remove a killed run's temporary shard; a recent one may be another writer's, in progress."""
        try:
            if time.time() - entry.stat().st_mtime > _STALE_TEMPORARY_SECONDS:
                os.unlink(entry.path)
        except OSError:
            pass

    def _adopt(self, names: list[str]) -> None:
        """Index shards written without index entries; one that cannot be read is left out."""
        batch: list[tuple[Shard, list[str]]] = []
        for name in names:
            path = self.folder / name
            try:
                shard = read_layout(path, name)
                with np.load(path) as data:
                    hashes = data["hashes"].tolist()
                if len(hashes) != shard.rows:
                    raise ValueError(f"{name}: {len(hashes)} hashes for {shard.rows} rows")
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                continue  # cut short, damaged or removed since the listing: its items count as missing
            batch.append((shard, hashes))
            if sum(s.rows for s, _ in batch) >= _ADOPT_ROWS:
                self._index(batch)
                batch = []
        self._index(batch)

    def _index(self, shards: list[tuple[Shard, list[str]]]) -> None:
        """Record shards and their rows in one transaction; a shard already recorded is left as is."""
        if not shards:
            return
        with self._transaction() as db:
            entries, added = [], {}
            for shard, hashes in shards:
                cursor = db.execute("INSERT OR IGNORE INTO shards (name, rows, dim, offset) VALUES (?, ?, ?, ?)",
                                    shard)
                if cursor.rowcount:  # another process may have indexed it first
                    added[cursor.lastrowid] = shard
                    entries += zip(hashes, [cursor.lastrowid] * len(hashes), range(len(hashes)))
            entries.sort()  # in key order, each B-tree page is written once rather than once per row
            db.executemany("INSERT OR REPLACE INTO entries (hash, shard, row) VALUES (?, ?, ?)", entries)
        self._shards.update(added)

    def _forget(self, shard_id: int) -> None:
        """Drop a vanished shard and the entries that still point at it."""
        with self._transaction() as db:
            db.execute("DELETE FROM entries WHERE shard = ?", (shard_id,))
            db.execute("DELETE FROM shards WHERE id = ?", (shard_id,))
        self._shards.pop(shard_id, None)
        self._readable.pop(shard_id, None)

    # -- reading --------------------------------------------------------------------------------

    def _locate(self, hashes: list[str]) -> dict[str, tuple[int, int]]:
        """(shard id, row) of each hash that is indexed in a readable shard."""
        if self._db is None:
            if not self.folder.is_dir():
                return {}
            self._open_index()  # another process wrote the first shard since this cache was opened
            self._reconcile()
        unique = [h for h in dict.fromkeys(hashes) if h not in self._places]
        found = {h: self._places[h] for h in hashes if h in self._places}
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start:start + _LOOKUP_CHUNK]
            query = f"SELECT hash, shard, row FROM entries WHERE hash IN ({','.join('?' * len(chunk))})"
            for item_hash, shard, row in self._db.execute(query, chunk):
                found[item_hash] = (shard, row)
        if any(shard not in self._shards for shard, _ in found.values()):
            self._load_shards()  # another process wrote since: learn its shards
        found = {h: place for h, place in found.items() if self._is_readable(place[0])}
        self._places.update(found)
        return found

    def _is_readable(self, shard_id: int) -> bool:
        """Whether the shard's file is there and long enough, checked once per shard."""
        if shard_id not in self._readable:
            shard = self._shards.get(shard_id)
            try:
                readable = shard is not None and os.stat(self.folder / shard.name).st_size >= shard.end
            except OSError:
                readable = False
            self._readable[shard_id] = readable
        return self._readable[shard_id]
