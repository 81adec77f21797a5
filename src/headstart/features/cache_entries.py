"""What the cache folder holds, how big and how old each part is, and removing the parts not needed.

Every backbone leaves entries in the cache folder (:func:`headstart.paths.default_cache_dir`): its
cached features (``features/<fingerprint>/``), its ONNX exports (``onnx/<fingerprint>.onnx``,
``-form<n>.onnx`` for a text encoder, ``-bottom<n>.onnx`` for a fine-tune's frozen bottom), and unpacked packaged weights
(``models/<name>/``). Each fine-tune's weights have a fingerprint of their own, so entries pile up.
Any of them can be removed: what is needed again is computed again, at the cost of its time.

An entry's age is the time since it was last written or used: readers mark what they use
(:func:`headstart.paths.mark_used`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from headstart.errors import HeadstartError

KINDS = ("features", "onnx", "models")  # only these folders' entries are listed or removed
_DAY = 24 * 3600
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class CacheEntry:
    """One removable part of the cache folder.

    Attributes:
        kind: ``features``, ``onnx`` or ``models``.
        path: the entry's file or folder.
        size: bytes in its files.
        last_used: when it was last written or used, in seconds since the epoch.
        label: what it is for people: the backbone's name where the cache knows it, else its file name.
    """

    kind: str
    path: Path
    size: int
    last_used: float
    label: str

    def age_days(self, now: float) -> float:
        """Days since the entry was last written or used."""
        return max(0.0, now - self.last_used) / _DAY


def cache_entries(root: str | Path) -> list[CacheEntry]:
    """The entries of the cache folder ``root``, the least recently used first (none when it is missing)."""
    root = Path(root)
    entries = []
    for kind in KINDS:
        folder = root / kind
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            size, last_used = _size_and_last_use(path)
            entries.append(CacheEntry(kind, path, size, last_used, _label(root, kind, path)))
    return sorted(entries, key=lambda entry: (entry.last_used, str(entry.path)))


def to_prune(entries: list[CacheEntry], *, older_than_days: float | None = None, max_size: int | None = None,
             now: float | None = None) -> list[CacheEntry]:
    """The entries to remove: the old ones, then the least recently used until the rest fit in ``max_size``.

    Args:
        entries: as :func:`cache_entries` gives them.
        older_than_days: remove entries not used for longer than this; None: no limit of age.
        max_size: the bytes the kept entries may take; None: no limit of size.
        now: the time to measure ages from (default: now).

    Returns:
        The entries to remove, the least recently used first.
    """
    now = time.time() if now is None else now
    oldest_first = sorted(entries, key=lambda entry: entry.last_used)
    remove = [e for e in oldest_first if older_than_days is not None and e.age_days(now) > older_than_days]
    if max_size is not None:
        left = sum(e.size for e in oldest_first if e not in remove)
        for entry in oldest_first:
            if left <= max_size:
                break
            if entry not in remove:
                remove.append(entry)
                left -= entry.size
    return sorted(remove, key=lambda entry: entry.last_used)


def remove_entries(entries: list[CacheEntry]) -> int:
    """Remove the entries' files and folders; one already gone counts as removed.

    Returns:
        The bytes freed.
    """
    freed = 0
    for entry in entries:
        if entry.path.is_dir() and not entry.path.is_symlink():
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            entry.path.unlink(missing_ok=True)
        if not entry.path.exists():
            freed += entry.size
    return freed


def parse_size(text: str, option: str = "--max-size") -> int:
    """Bytes from a size such as ``2GB``, ``500 MB``, ``1.5G``, ``800MiB`` or ``1000000``.

    Raises:
        HeadstartError: the text is not a size, naming ``option``.
    """
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if unit not in _UNITS:
        raise HeadstartError(f"cannot read the size '{text}'", where=option,
                             fix="write a number and a unit, e.g. 2GB, 500MB or 800MiB")
    return int(float(match.group(1)) * _UNITS[unit])


def human_size(size: int) -> str:
    """``size`` bytes as people read it: ``532 B``, ``12.3 MB``, ``1.2 GB``."""
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"


def human_age(days: float) -> str:
    """An age in the largest unit that is at least one: ``3 days``, ``5 hours``, ``12 minutes``."""
    for unit, length in (("day", 1.0), ("hour", 1 / 24), ("minute", 1 / 1440)):
        if days >= length:
            count = int(days / length)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "just now"


def _size_and_last_use(path: Path) -> tuple[int, float]:
    """Bytes in the files under ``path`` and the latest time it or they were written or marked used."""
    try:
        stat = path.lstat()
    except OSError:  # removed since the listing
        return 0, 0.0
    if not path.is_dir() or path.is_symlink():
        return stat.st_size, stat.st_mtime
    size, latest = 0, stat.st_mtime
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                file_stat = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            size += file_stat.st_size
            latest = max(latest, file_stat.st_mtime)
    return size, latest


def _label(root: Path, kind: str, path: Path) -> str:
    """The backbone an entry belongs to (from its features' backbone.json), else the entry's name."""
    if kind == "models":
        return path.name
    fingerprint, _, rest = path.name.partition(".")[0].partition("-")
    try:
        name = json.loads((root / "features" / fingerprint / "backbone.json").read_text(encoding="utf-8"))["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return path.name
    return f"{name} ({rest.replace('bottom', 'bottom ')} groups)" if rest.startswith("bottom") else str(name)
