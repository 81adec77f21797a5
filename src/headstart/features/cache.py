"""Frozen-backbone features on disk, content-addressed by backbone fingerprint and item hash.

A second run with another head, seed or more items reads what is there and
computes only the items it has not seen. Each write adds one shard file,
written to a temporary name and renamed, so a killed run never leaves a
half-written shard behind.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np


def default_cache_dir() -> Path:
    """``$HEADSTART_CACHE`` or ``~/.cache/headstart``."""
    return Path(os.environ.get("HEADSTART_CACHE") or Path.home() / ".cache" / "headstart")


class FeatureCache:
    """Feature vectors of one backbone, keyed by item content hash.

    Args:
        root: the cache folder (shared by all backbones).
        fingerprint: the backbone's :meth:`~headstart.backbones.Backbone.fingerprint`.
        description: what the backbone is, written once beside the shards for people.
    """

    def __init__(self, root: str | Path, fingerprint: str, description: dict | None = None):
        self.folder = Path(root) / "features" / fingerprint[:24]
        self._rows: dict[str, np.ndarray] = {}
        if self.folder.exists():
            for shard in sorted(self.folder.glob("shard-*.npz")):
                with np.load(shard) as data:
                    self._rows.update(zip(data["hashes"].tolist(), data["features"]))
        self._description = description

    def __len__(self) -> int:
        return len(self._rows)

    def missing(self, hashes: list[str]) -> list[str]:
        """The hashes (unique, in first-seen order) that have no cached features."""
        return [h for h in dict.fromkeys(hashes) if h not in self._rows]

    def get(self, hashes: list[str]) -> np.ndarray:
        """Features for ``hashes`` in that order, shape (n, d). Every hash must be cached."""
        return np.stack([self._rows[h] for h in hashes]).astype(np.float32, copy=False)

    def put(self, hashes: list[str], features: np.ndarray) -> None:
        """Store features (n, d) for ``hashes`` as one new shard."""
        if not hashes:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._description is not None and not (self.folder / "backbone.json").exists():
            (self.folder / "backbone.json").write_text(json.dumps(self._description, indent=2))
        name = f"shard-{uuid.uuid4().hex}"
        temporary = self.folder / f".{name}.tmp.npz"
        np.savez(temporary, hashes=np.array(hashes), features=features.astype(np.float32))
        os.replace(temporary, self.folder / f"{name}.npz")
        self._rows.update(zip(hashes, features.astype(np.float32)))
