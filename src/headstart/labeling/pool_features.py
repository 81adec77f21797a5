"""A project's features as one memory-mapped matrix in item order, written once from the features cache.

The features cache (:mod:`headstart.features.cache`) answers "the features of these hashes" by
copying rows out of its shards: for a million items of 384 floats that is a 1.5 GB copy in every
process that opens the project, and a few seconds of reading before ``label next`` can start. So
the first time a project needs its features they go, a page of items at a time, into one float32
``.npy`` file in item order (row i is the item with id i + 1) under ``<cache>/labeling-pools/``,
named by the backbone's fingerprint and a digest of the items' content hashes; later opens map it
(``np.load(mmap_mode="r")``): no copy, and the operating system keeps the pages that are used.
The project keeps the file's name in its settings (``pool_matrix``); a file that is gone (another
machine, a cleaned cache) is written again from the cache, or the backbone where the cache lacks
items. The file is written under a temporary name and renamed, so a killed run leaves none half-written.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np

from headstart.labeling.item_reads import item_pages
from headstart.paths import default_cache_dir
from headstart.progress import progress_bar

SETTING = "pool_matrix"  # the project setting: {"file", "rows", "key"}
FOLDER = "labeling-pools"


def open_pool_matrix(store, settings: dict, *, backbone: str, options: dict, key: str | None, engine: str = "auto",
                     cache_dir: str | Path | None = None) -> tuple[np.ndarray, dict | None]:
    """The pool's features, memory-mapped; written first when the file is not there.

    Args:
        store: the project's :class:`~headstart.labeling.store.Store`.
        settings: the project's settings (``pool_matrix``: the file written before).
        backbone, options: the project's backbone and its options, loaded only for items the cache lacks.
        key: the fingerprint the project's features came from (setting ``features_key``), or None.
        engine, cache_dir: where forward passes run; the features cache (its folder holds ``labeling-pools``).

    Returns:
        (float32 features (n, d), read-only; the new ``pool_matrix`` setting, or None when unchanged).
    """
    root = Path(cache_dir or default_cache_dir()) / FOLDER
    kept = settings.get(SETTING)
    if kept and (not key or kept.get("key") == key):
        path = root / kept["file"]
        try:
            matrix = np.load(path, mmap_mode="r")
            if matrix.ndim == 2 and len(matrix) == kept["rows"] and matrix.dtype == np.float32:
                return matrix, None
        except (OSError, ValueError):  # gone, or cut short: write it again
            pass
    return _write(store, root, backbone=backbone, options=options, key=key, engine=engine, cache_dir=cache_dir)


def _write(store, root: Path, *, backbone: str, options: dict, key: str | None, engine: str,
           cache_dir: str | Path | None) -> tuple[np.ndarray, dict]:
    from headstart.features.cache import FeatureCache

    cache_root = Path(cache_dir or default_cache_dir())
    cache = FeatureCache(cache_root, key) if key else None
    model = None
    rows = store.count_items()
    root.mkdir(parents=True, exist_ok=True)
    temporary = root / f".{uuid.uuid4().hex}.tmp.npy"
    digest, out = hashlib.sha256(), None
    try:
        with progress_bar("features of the pool, into one matrix", rows) as advance:
            for page in item_pages(store):
                ids, contents, hashes = (list(column) for column in zip(*page))
                digest.update("".join(hashes).encode())
                if cache is not None and not cache.missing(hashes):
                    features = cache.get(hashes)
                else:
                    if model is None:
                        from headstart.backbones import create_backbone

                        model = create_backbone(backbone, **options)
                        if key and model.fingerprint() != key:  # other weights: every row from these
                            return _write(store, root, backbone=backbone, options=options, key=model.fingerprint(),
                                          engine=engine, cache_dir=cache_dir)
                        key = model.fingerprint()
                    from headstart.features.extract import cached_features

                    features = cached_features(model, contents, hashes, engine=engine, cache_dir=cache_dir)
                if out is None:
                    out = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float32,
                                                    shape=(rows, features.shape[1]))
                out[ids[0] - 1:ids[-1]] = features  # ids are 1..n in order: position = id - 1
                advance(len(ids))
        out.flush()
        del out
        name = f"{key[:24]}-{digest.hexdigest()[:24]}.npy"
        os.replace(temporary, root / name)
    finally:
        temporary.unlink(missing_ok=True)
    return np.load(root / name, mmap_mode="r"), {"file": name, "rows": rows, "key": key}
