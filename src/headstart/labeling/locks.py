"""One retrain at a time per store: the lock that `headstart label retrain`, the web server's
background thread and anything else that retrains the probe take first.

    with retrain_lock(project.url, blocking=False) as held:      # or project.retrain_lock(...)
        if held:
            retrain_probe(project)

It is an advisory ``flock`` on a file in the temporary folder named after the store's URL, so
every process on the machine that opens the same store meets the same lock, and the kernel
releases it when its holder exits, even when killed: a crashed retrain never leaves it taken.
The empty file stays after release, one per store: deleting it would let a process that opened it
before the deletion lock the old file while a newcomer locks a new one, and both would retrain.
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def lock_path(url: str) -> Path:
    """The lock file of the store at ``url`` (one name per URL; the URL itself may hold a password)."""
    return Path(tempfile.gettempdir()) / f"headstart-retrain-{hashlib.sha1(url.encode()).hexdigest()[:16]}"


@contextmanager
def retrain_lock(url: str, *, blocking: bool = True) -> Iterator[bool]:
    """Hold the retrain lock of the store at ``url`` for the ``with`` block.

    Args:
        url: the store's SQLAlchemy URL (``Store.url``: a SQLite file's is absolute, so two spellings
            of one path share the lock).
        blocking: wait while someone else holds it; when False, do not wait.

    Yields:
        True while this block holds the lock; False when ``blocking`` is False and another holder
        has it (the block then runs without it and should skip the retrain).
    """
    with open(lock_path(url), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
