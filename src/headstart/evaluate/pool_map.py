"""A map of a pool as JSON values: clusters, typical items, classes to merge or split, a 2-D map.

The clusters come with their most typical items; where the pool is labeled, the classes' overlaps
and splits are found too.

:func:`pool_map` is what ``headstart explore`` prints and saves (``explore.json``) and what a
labeling project draws from its cached pool features; :mod:`headstart.evaluate.explore_plot` draws
its picture.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from headstart.errors import DataError
from headstart.evaluate.class_structure import (MERGE_MIXING, NEIGHBOURS, SPLIT_SILHOUETTE, merge_candidates,
                                                split_candidates)
from headstart.evaluate.clusters import K_RANGE, MIN_ITEMS, WEAK_STRUCTURE, cluster_features, pca_map

__all__ = ["pool_map", "summary_sentence", "check_pool_size", "CRITERION", "SHOWN_CHARS"]

SHOWN_CHARS = 300   # characters of an item shown
CRITERION = (f"k of {K_RANGE[0]}-{K_RANGE[1]} with the highest mean silhouette (cosine) of k-means on the "
             "L2-normalized features")


def check_pool_size(n: int, where: str) -> None:
    """Raise DataError when a pool has too few items to cluster."""
    if n < MIN_ITEMS:
        raise DataError(f"the pool has {n} item(s): too few to map", where=where,
                        fix=f"give at least {MIN_ITEMS} items")


def pool_map(features: np.ndarray, items: Sequence[str], origins: Sequence[str], *,
             labels: Sequence[str] | None = None, k: int | None = None, seed: int = 0,
             chars: int = SHOWN_CHARS) -> dict:
    """Cluster a pool's features and, where labeled, find classes to merge or split.

    Args:
        features: (n, d) frozen features, n >= :data:`~headstart.evaluate.clusters.MIN_ITEMS`.
        items: the n items (texts or image paths), shown as the most typical ones.
        origins: where each item came from (file and row, or an id).
        labels: each item's class name, or None for an unlabeled pool.
        k: the number of clusters, or None to choose it by silhouette (see :data:`CRITERION`).
        seed: seeds subsamples and k-means.
        chars: the most characters of an item shown.

    Returns:
        JSON values: ``k``, ``criterion``, ``silhouette`` (the chosen k's), ``weak`` (below
        Kaufman & Rousseeuw's 0.25: no substantial group structure), ``silhouettes`` (k -> score),
        ``clusters`` (``cluster`` from 1, ``size``, ``share``, ``typical`` items, ``labels``: the
        commonest classes with their counts, or None), ``classes``, ``label_agreement`` (adjusted
        Rand index of clusters and classes), ``merges``, ``splits`` and ``split_silhouettes`` (None
        when unlabeled; see :mod:`headstart.evaluate.class_structure`), ``items``, ``map``
        (``points`` and ``cluster``, from 1, of every item) and ``explained``.

    Raises:
        DataError: fewer than ``MIN_ITEMS`` items.
    """
    check_pool_size(len(items), "the pool")
    clustering = cluster_features(features, k=k, seed=seed)

    def shown(i: int) -> dict:
        entry = {"item": str(items[i])[:chars], "origin": str(origins[i])}
        return {**entry, "label": labels[i]} if labels is not None else entry

    clusters = []
    for c, (size, typical) in enumerate(zip(clustering.sizes, clustering.typical)):
        counts = None
        if labels is not None:
            names, n = np.unique([labels[i] for i in np.flatnonzero(clustering.assignment == c)], return_counts=True)
            counts = {str(names[j]): int(n[j]) for j in np.argsort(-n, kind="stable")[:3]}
        clusters.append({"cluster": c + 1, "size": int(size), "share": size / len(items),
                         "typical": [shown(int(i)) for i in typical], "labels": counts})
    points, explained = pca_map(features, seed=seed)
    summary = {"k": clustering.k, "criterion": CRITERION if k is None else f"k = {k}, given",
               "silhouette": clustering.silhouette, "weak": clustering.weak, "weak_below": WEAK_STRUCTURE,
               "silhouettes": {str(key): value for key, value in clustering.silhouettes.items()},
               "clusters": clusters, "items": len(items),
               "map": {"points": np.round(points, 4).tolist(), "cluster": (clustering.assignment + 1).tolist()},
               "explained": list(explained)}
    return {**summary, **_class_structure(features, labels, clustering.assignment, shown, seed)}


def _class_structure(features: np.ndarray, labels: Sequence[str] | None, assignment: np.ndarray, shown,
                     seed: int) -> dict:
    """The class structure of a labeled pool (each value None when unlabeled).

    ``classes``, ``label_agreement`` (adjusted Rand index of clusters and classes: 0 for chance, 1 when
    they coincide), ``merges``, ``splits`` and ``split_silhouettes``.
    """
    if labels is None:
        return {"classes": None, "label_agreement": None, "merges": None, "splits": None, "split_silhouettes": None}
    classes = sorted(set(labels))
    lookup = {name: i for i, name in enumerate(classes)}
    label_ids = np.array([lookup[name] for name in labels], dtype=np.int64)
    from sklearn.metrics import adjusted_rand_score

    merges = merge_candidates(features, label_ids, classes, seed=seed) if len(classes) > 1 else []
    flagged, checked = split_candidates(features, label_ids, classes, seed=seed)
    splits = [{**entry, "typical": [[shown(int(i)) for i in part] for part in entry["typical"]]} for entry in flagged]
    return {"classes": classes, "label_agreement": float(adjusted_rand_score(label_ids, assignment)),
            "merges": merges, "splits": splits, "split_silhouettes": checked,
            "merge_rule": f"mixing >= {MERGE_MIXING} among {NEIGHBOURS} nearest neighbours",
            "split_rule": f"2-means silhouette >= {SPLIT_SILHOUETTE} within the class"}


def summary_sentence(summary: dict) -> str:
    """One sentence on a pool map: the clusters and how clear they are, and the classes to merge or split."""
    text = f"The {summary['items']} items fall into {summary['k']} clusters"
    if summary.get("silhouette") is not None:
        text += f" (mean silhouette {summary['silhouette']:.2f}"
        text += (f": below {summary['weak_below']}, a partition of one cloud more than separate groups)."
                 if summary["weak"] else ").")
    else:
        text += "."
    if summary.get("merges") is not None:
        merges = ", ".join(" + ".join(pair["classes"]) for pair in summary["merges"][:3]) or "none"
        splits = ", ".join(entry["class"] for entry in summary["splits"][:3]) or "none"
        text += f" Clusters and classes agree by an adjusted Rand index of {summary['label_agreement']:.2f}."
        text += f" Classes the features mix up (merge?): {merges}. Classes holding two groups (split?): {splits}."
    return text
