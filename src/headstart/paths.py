"""Where headstart keeps what it computes once: features, ONNX exports and unpacked model weights."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """The cache folder: ``$HEADSTART_CACHE``, or ``~/.cache/headstart``."""
    return Path(os.environ.get("HEADSTART_CACHE") or Path.home() / ".cache" / "headstart")
