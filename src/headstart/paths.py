"""Where headstart keeps what it computes once: features, ONNX exports and unpacked model weights."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """The cache folder: ``$HEADSTART_CACHE``, or ``~/.cache/headstart``."""
    return Path(os.environ.get("HEADSTART_CACHE") or Path.home() / ".cache" / "headstart")


def mark_used(path: str | Path) -> None:
    """Set ``path``'s modification time to now, so that ``headstart cache prune`` sees it in use.

    A cache that cannot be written (read-only, another user's) is used as it is.
    """
    try:
        os.utime(path)
    except OSError:
        pass
