"""The features of a labeling project's items, read from the features cache without loading the
backbone when the cache holds them all.

The features cache is keyed by the backbone's fingerprint, a hash of its weights
(:meth:`headstart.backbones.Backbone.fingerprint`), and knowing it takes loading the backbone: for
``headstart label next`` and ``label add`` that load was nearly all of their 50-110 s. So the project
keeps the fingerprint of the backbone that last gave its features (setting ``features_key``); while
the cache holds every item under that key, they are read without the backbone. Weights that change
on disk later (a new package version) are not seen then: the project keeps the features its probes
were trained on, as a model keeps its own weights. Items the cache lacks (a pruned cache, an item of
another run) load the backbone and compute only those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from headstart.features.cache import FeatureCache
from headstart.paths import default_cache_dir

FEATURES_KEY = "features_key"  # the project setting: fingerprint of the backbone that gave the features


def item_features(contents: Sequence[str], hashes: Sequence[str], *, backbone: str, options: dict,
                  key: str | None, engine: str = "auto", cache_dir: str | Path | None = None
                  ) -> tuple[np.ndarray, str]:
    """Features of a project's items, from the cache alone when it holds them all under ``key``.

    Args:
        contents: the items' texts or image paths.
        hashes: their content hashes, the cache's keys.
        backbone: the project's registry name; loaded only when the cache lacks an item.
        options: its ``create_backbone`` options.
        key: the fingerprint kept with the project (setting :data:`FEATURES_KEY`), or None.
        engine: where frozen forward passes run, when they are needed.
        cache_dir: the features cache (default :func:`headstart.paths.default_cache_dir`).

    Returns:
        (float32 features (n, d) in the order of ``hashes``, the fingerprint to keep with the project).
    """
    if key:
        cache = FeatureCache(cache_dir or default_cache_dir(), key)
        if not cache.missing(list(hashes)):
            return cache.get(list(hashes)), key
    from headstart.backbones import create_backbone
    from headstart.features.extract import cached_features

    model = create_backbone(backbone, **options)
    features = cached_features(model, contents, hashes, engine=engine, cache_dir=cache_dir)
    return features, model.fingerprint()  # memoized: the weights are not hashed twice
