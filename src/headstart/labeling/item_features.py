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

from typing import TYPE_CHECKING, Sequence

import numpy as np

from headstart.features.cache import FeatureCache
from headstart.paths import default_cache_dir

if TYPE_CHECKING:
    from headstart.labeling.project import LabelingProject
    from headstart.labeling.store import ItemRow

FEATURES_KEY = "features_key"  # the project setting: fingerprint of the backbone that gave the features


def item_features(project: LabelingProject, rows: Sequence[ItemRow]) -> np.ndarray:
    """Features (len(rows), d) of the project's items ``rows``, from the cache when it holds them all.

    Args:
        project: the labeling project (its backbone, options, engine and cache folder).
        rows: items of the project's table.

    Returns:
        float32 features in the order of ``rows``.
    """
    hashes = [row.hash for row in rows]
    root = project.cache_dir or default_cache_dir()
    key = project.settings.get(FEATURES_KEY)
    if key:
        cache = FeatureCache(root, key)
        if not cache.missing(hashes):
            return cache.get(hashes)
    from headstart.backbones import create_backbone
    from headstart.features.extract import cached_features

    backbone = create_backbone(project.backbone, **project.backbone_options)
    features = cached_features(backbone, [row.content for row in rows], hashes, engine=project.engine,
                               cache_dir=project.cache_dir)
    if backbone.fingerprint() != key:  # memoized: no second hash of the weights
        project.update_settings(**{FEATURES_KEY: backbone.fingerprint()})
    return features
