"""The probe's probabilities of every item, kept per probe: what lets ``label next`` choose from a
million items in a fraction of a second, exactly.

Uncertainty strategies rank every candidate by the probe's probabilities, and for a million items
of 384 features computing them is a pass over 1.5 GB of features: a second or more, in every
``label next``. But they change only when the probe does (a retrain, every ``retrain_every``
labels), so they are computed once per probe, a chunk at a time, and kept: in memory, and beside
the pool's memory-mapped feature matrix (:mod:`.pool_features`) as ``<matrix>.proba-<digest>.npy``,
named by a digest of the probe's weights (so another project's probe over the same pool never
reads them). A retrain computes them when it pre-labels the pool (:func:`.retrain.predict_pool`),
so the next ``label next`` only reads n_items x n_classes floats. Files of older probes go, the
newest :data:`KEEP_PROBES` stay. Each item's squared feature norm (BADGE's candidate filter) is
kept the same way, once per pool.

An approximate shortlist was tried first and measured worse (benchmarks/README.md, pool scale): a
rank-64 PCA prefilter of the probe's logits (the strategy then sees the 1,000 of SST-2's 6,920
items of smallest approximate margin) kept 37-42% of the exact 200 smallest margins, and in
``benchmarks/active_learning.py --shortlist 1000`` margin-diverse missed the target in one seed of
three within 700 labels and ended 1.4 points lower; an int8 copy of the features (FAISS's SQ8)
still costs a full pass per call. With the probabilities kept, the strategies run unchanged, exactly.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import numpy as np

KEEP_PROBES = 3  # probability files kept per pool matrix
CHUNK = 65_536  # rows a matrix product takes at a time (bounded memory)


def probe_digest(head) -> str:
    """A short digest of a linear head's weights and bias."""
    return hashlib.sha256(head.to_bytes()).hexdigest()[:20]


def pool_proba(features: np.ndarray, head, memo: dict) -> np.ndarray:
    """``head``'s class probabilities of every item (n, k) float32, computed once per head.

    Args:
        features: every item's features (n, d); a ``np.memmap`` keeps its result in a file beside it.
        head: a :class:`~headstart.learn.head.LinearHead`.
        memo: the caller's dict, holding results in memory (digest -> probabilities).
    """
    digest = probe_digest(head)
    found = memo.get(digest)  # get, not `in` then []: the web server's threads share the memo
    if found is not None:
        return found
    path = _beside(features, f"proba-{digest}")
    proba = _load(path, (len(features), len(head.bias)))
    if proba is None:
        from headstart.progress import progress_bar

        proba = np.empty((len(features), len(head.bias)), dtype=np.float32)
        with progress_bar("the probe's probabilities of the pool", len(features)) as advance:
            for start in range(0, len(features), CHUNK):
                block = np.asarray(features[start:start + CHUNK])
                proba[start:start + len(block)] = head.proba(block)
                advance(len(block))
        if path is not None:
            _save(path, proba)
            _forget_old(path)
    for old in [key for key in memo if key != digest]:  # one probe's at a time: an older one is never asked again
        memo.pop(old, None)
    memo[digest] = proba
    return proba


def squared_norms(features: np.ndarray, memo: dict) -> np.ndarray:
    """Each item's squared feature norm (n,) float32, computed once per pool."""
    if memo.get("norms") is None:
        path = _beside(features, "sqnorms")
        norms = _load(path, (len(features),))
        if norms is None:
            norms = np.empty(len(features), dtype=np.float32)
            for start in range(0, len(features), CHUNK):
                block = np.asarray(features[start:start + CHUNK], dtype=np.float32)
                norms[start:start + len(block)] = (block * block).sum(1)
            if path is not None:
                _save(path, norms)
        memo["norms"] = norms
    return memo["norms"]


def _beside(features: np.ndarray, what: str) -> Path | None:
    filename = getattr(features, "filename", None)
    if not isinstance(features, np.memmap) or not filename:
        return None
    matrix = Path(filename)
    return matrix.with_name(f"{matrix.stem}.{what}.npy")


def _load(path: Path | None, shape: tuple) -> np.ndarray | None:
    if path is None:
        return None
    try:
        kept = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return np.asarray(kept) if kept.shape == shape and kept.dtype == np.float32 else None


def _save(path: Path, array: np.ndarray) -> None:
    """Written under a temporary name and renamed: a reader never sees half a file."""
    temporary = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.npy")
    try:
        np.save(temporary, array)
        temporary.replace(path)
    except OSError:  # a read-only cache: the result stays in memory
        temporary.unlink(missing_ok=True)


def _forget_old(path: Path) -> None:
    """Remove all but the newest KEEP_PROBES probability files of this matrix."""
    matrix = path.name.split(".proba-")[0]
    try:
        kept = sorted(path.parent.glob(f"{matrix}.proba-*.npy"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[KEEP_PROBES:]:
            old.unlink(missing_ok=True)
    except OSError:  # another process removed one meanwhile
        pass
