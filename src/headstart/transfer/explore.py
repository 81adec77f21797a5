"""``headstart explore``: a map of a pool before (or while) labeling it.

Frozen features of the pool (from the features cache) are clustered by
:func:`headstart.evaluate.pool_map.pool_map`: how many groups (chosen by silhouette), each with its
size and most typical items, a 2-D map, and, where the pool is labeled, which classes the features
mix up (candidate merges) and which class holds two groups (candidate splits).
:mod:`headstart.transfer.explore_page` writes it as a page.

Example:
    report = explore("pool.csv", backbone="minilm-l6")
    report.summary["k"], report.sentence(); report.save("runs/pool-explore")
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from headstart.backbones import Backbone, backbone_name_for, backbone_options, create_backbone
from headstart.data.dataset import Dataset
from headstart.data.sources import read_dataset
from headstart.errors import DataError
from headstart.evaluate.pool_map import check_pool_size, pool_map, summary_sentence
from headstart.features.extract import cached_features
from headstart.progress import say
from headstart.transfer import page
from headstart.transfer.explore_page import write_explore_page

MAX_ITEMS = 5_000   # items mapped by default: a random subsample of a larger pool keeps it to seconds


@dataclass
class ExploreReport:
    """What ``headstart explore`` found: :attr:`summary` is what ``explore.json`` holds.

    ``--json`` prints it less the map. Its keys are those of :func:`headstart.evaluate.pool_map.pool_map`,
    and ``pool``, ``pool_items``, ``backbone``, ``modality``, ``seconds``.
    """

    summary: dict
    stem: ClassVar[str] = "explore"

    def sentence(self) -> str:
        """How many clusters, how clear, and the classes to merge or split."""
        return summary_sentence(self.summary)

    def table(self) -> str:
        """The clusters as a plain-text table: size, share, commonest classes, most typical item."""
        rows = []
        for cluster in self.summary["clusters"]:
            labels = ", ".join(f"{name} {n}" for name, n in (cluster["labels"] or {}).items())
            rows.append([cluster["cluster"], cluster["size"], f"{cluster['share']:.0%}", labels or "\u2014",
                         cluster["typical"][0]["item"][:60].replace("\n", " ")])
        return page.table_text(["cluster", "items", "share", "classes", "most typical"], rows)

    def save(self, folder: str | Path) -> Path:
        """Write ``explore.json``, ``explore.png`` and ``explore.html`` into ``folder``."""
        return write_explore_page(folder, self.summary)


def read_pool(path: str | Path, **columns) -> Dataset:
    """The pool at ``path``, with its labels where every row (or image, in class subfolders) has one.

    Raises:
        DataError: unreadable, empty, or fewer than :data:`~headstart.evaluate.clusters.MIN_ITEMS` items.
    """
    path = Path(path)
    pool = read_dataset(path, require_labels=False, **columns)
    if path.is_dir() and all(len(Path(item).relative_to(path.absolute()).parts) > 1 for item in pool.items):
        try:  # a folder of class subfolders is a labeled set
            pool = read_dataset(path, **columns)
        except DataError:
            pass
    check_pool_size(len(pool), str(path))
    return pool


def check_clusters(clusters: int | None, items: int) -> None:
    """Raise DataError for a number of clusters below 1 or above the items mapped."""
    if clusters is not None and not 1 <= clusters <= items:
        raise DataError(f"{clusters} clusters of {items} items", where="--clusters",
                        fix=f"give 1 to {items}, or leave it out to choose by silhouette")


def explore_pool(pool: Dataset, backbone: Backbone, *, clusters: int | None = None, seed: int = 0,
                 max_items: int = MAX_ITEMS, engine: str = "auto", cache_dir: str | Path | None = None
                 ) -> ExploreReport:
    """Map ``pool`` on ``backbone``'s frozen features.

    Args:
        pool: the items, labels optional (a labeled pool also gets candidate merges and splits).
        backbone: the backbone whose features are clustered.
        clusters: the number of clusters, or None to choose it by silhouette.
        seed: seeds the subsample, k-means and the map.
        max_items: items mapped at most (a random subsample of a larger pool).
        engine: ``auto``/``onnx``/``torch``: where the forward passes run.
        cache_dir: the features cache (default ``$HEADSTART_CACHE`` or ``~/.cache/headstart``).

    Returns:
        An :class:`ExploreReport`.

    Raises:
        DataError: fewer than three items, or ``clusters`` below 1 or above the items mapped.
    """
    started = time.perf_counter()
    check_pool_size(len(pool), pool.source)
    size = len(pool)
    if size > max_items:
        pool = pool.subset(np.sort(np.random.default_rng(seed).choice(size, max_items, replace=False)))
    check_clusters(clusters, len(pool))
    say(f"explore: {len(pool)} of {size} items on {backbone.name}")
    features = cached_features(backbone, pool.items, pool.hashes, engine=engine, cache_dir=cache_dir)
    summary = pool_map(features, pool.items, pool.origins, labels=pool.labels, k=clusters, seed=seed)
    return ExploreReport({**summary, "pool": pool.source, "pool_items": size, "backbone": backbone.name,
                          "modality": pool.modality, "seconds": time.perf_counter() - started})


def explore(path: str | Path, *, backbone: str | None = None, out: str | Path | None = None,
            clusters: int | None = None, seed: int = 0, max_items: int = MAX_ITEMS, image_size: int | None = None,
            max_length: int | None = None, cache_dir: str | Path | None = None,
            columns: dict | None = None) -> ExploreReport:
    """Read the pool at ``path``, map it (see :func:`explore_pool`) and save the page into ``out``.

    Args:
        path: a CSV/TSV/JSONL file or image folder; labels optional.
        backbone: a registry name (default: the modality's default backbone).
        out: a folder for ``explore.json``, ``explore.png`` and ``explore.html`` (nothing written when None).
        clusters: the number of clusters, or None to choose it by silhouette.
        seed: seeds the subsample, k-means and the map.
        max_items: items mapped at most.
        image_size: the side of images fed to an image backbone (default: the backbone's).
        max_length: tokens per text for a text backbone (default: the backbone's).
        cache_dir: the features cache.
        columns: column names: ``text_column``, ``label_column``, ``path_column``.
    """
    pool = read_pool(path, **(columns or {}))  # before the backbone's seconds of loading
    check_clusters(clusters, min(len(pool), max_items))
    name = backbone_name_for(pool.modality, backbone)
    report = explore_pool(pool, create_backbone(name, **backbone_options(image_size, max_length)), clusters=clusters,
                          seed=seed, max_items=max_items, cache_dir=cache_dir)
    if out is not None:
        report.save(out)
    return report
