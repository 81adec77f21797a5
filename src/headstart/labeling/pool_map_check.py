"""The project's map of its pool: clusters of the cached pool features, stored in the project's settings.

The same map as ``headstart explore`` (:func:`headstart.evaluate.pool_map.pool_map`), of a random
subsample of the pool; labeled items are not told apart (the map is of the pool a person labels
from). The Map page (:mod:`headstart.labeling.web.map_view`) shows it; "Map again" recomputes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from headstart.errors import HeadstartError
from headstart.evaluate.clusters import MIN_ITEMS
from headstart.evaluate.pool_map import pool_map
from headstart.labeling.models import utcnow
from headstart.labeling.store import iso

SETTING = "pool_map"
MAX_ITEMS = 2_000    # items mapped: a few seconds of k-means on a request's thread


def map_project_pool(project, *, seed: int = 0, max_items: int = MAX_ITEMS) -> dict:
    """Map a random subsample of the project's pool, store the summary in the project and return it.

    Returns:
        The summary of ``headstart explore`` (``k``, ``clusters``, ``map``...) with ``pool_items``,
        ``backbone`` and ``mapped_at``; or ``{"skipped": reason}`` when the pool is too small or its
        features cannot be computed.
    """
    if project.size < MIN_ITEMS:
        summary = {"skipped": f"a map needs at least {MIN_ITEMS} items; the pool has {project.size}"}
    else:
        try:
            summary = _map(project, seed=seed, max_items=max_items)
        except (HeadstartError, ValueError) as error:  # the project stands; only the map is missing
            summary = {"skipped": f"the map could not be drawn: {error}"}
    project.update_settings(**{SETTING: summary})
    return summary


def _map(project, *, seed: int, max_items: int) -> dict:
    positions = np.sort(np.random.default_rng(seed).permutation(project.size)[:max_items])
    features = project.features_at(positions)
    rows = project.rows_at(positions)  # these items only: the pool may be a million
    # an image's name, never where the server keeps it (the page shows the image through /media/<id>)
    contents = [Path(row.content).name if project.modality == "image" else row.content for row in rows]
    summary = pool_map(features, contents, [row.external_id for row in rows], seed=seed)
    summary.update(pool="the pool", pool_items=int(project.size), backbone=project.backbone, mapped_at=iso(utcnow()))
    return summary


def map_message(summary: dict) -> str:
    """What the page says after mapping: how many clusters, or why there is no map."""
    if "skipped" in summary:
        return summary["skipped"]
    return f"mapped {summary['items']} of {summary['pool_items']} items: {summary['k']} clusters"
