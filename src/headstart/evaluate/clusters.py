"""Clusters of a pool's frozen features: how many, which items are most typical, and a 2-D map.

Features are L2-normalized first, so that k-means groups by direction (cosine similarity), which
is what sentence encoders and image backbones' pooled features are compared by.

The number of clusters is the one of ``K_RANGE`` with the highest mean silhouette (Rousseeuw,
"Silhouettes: a graphical aid to the interpretation and validation of cluster analysis", 1987) on
a random subsample. Silhouette is chosen because it needs no labels and no scale: it weighs how
close each item is to its own cluster against the nearest other one, so it falls both when a
real group is cut in two and when two groups are lumped together; the elbow of the inertia
curve needs a judgment call, and the gap statistic (Tibshirani et al. 2001) fits every k again on
tens of reference data sets. Its limit: it never chooses one cluster, so a pool without groups
still gets k >= 2, which a low best silhouette (below ``WEAK_STRUCTURE``) gives away.

It lives below ``labeling`` and ``transfer`` so that ``headstart explore`` and the labeling
project's map cluster the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Clustering", "cluster_features", "normalized", "pca_map", "MIN_ITEMS", "K_RANGE"]

MIN_ITEMS = 3                # the fewest items a map is drawn of: the silhouette needs 2 <= k <= n - 1
K_RANGE = (2, 12)            # k tried (both ends included): more than a dozen groups no one reads on one page
SILHOUETTE_SAMPLE = 2_000    # items the silhouette of each k is measured on (it costs n^2)
FIT_SAMPLE = 20_000          # items the final k-means is fitted on; the rest are assigned to its centres
TYPICAL = 5                  # items shown as most typical of each cluster
# Kaufman & Rousseeuw (Finding Groups in Data, 1990) read a mean silhouette below 0.25 as "no
# substantial structure": the clusters are then a partition of a cloud rather than groups.
WEAK_STRUCTURE = 0.25


def normalized(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 length (float32); a zero row stays zero."""
    x = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


@dataclass
class Clustering:
    """k-means clusters of a pool.

    Attributes:
        k: the number of clusters.
        assignment: the cluster of each item, shape (n,).
        centres: the clusters' centres on the normalized features, shape (k, d).
        silhouettes: k -> mean silhouette on the subsample, for each k tried (empty when none could be).
        typical: for each cluster, positions of its items nearest its centre, nearest first.
    """

    k: int
    assignment: np.ndarray
    centres: np.ndarray
    silhouettes: dict[int, float] = field(default_factory=dict)
    typical: list[np.ndarray] = field(default_factory=list)

    @property
    def sizes(self) -> list[int]:
        """Items in each cluster."""
        return np.bincount(self.assignment, minlength=self.k).tolist()

    @property
    def silhouette(self) -> float | None:
        """The chosen k's mean silhouette, or None when no k could be scored."""
        return self.silhouettes.get(self.k)

    @property
    def weak(self) -> bool:
        """Whether the best silhouette says the pool has no substantial group structure."""
        return self.silhouette is None or self.silhouette < WEAK_STRUCTURE


def _kmeans(k: int, seed: int):
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=4, random_state=seed)


def silhouettes(x: np.ndarray, k_range: tuple[int, int] = K_RANGE, *, seed: int = 0) -> dict[int, float]:
    """The mean silhouette of k-means for each k that ``x`` (already normalized) allows, as a dict k -> score.

    Args:
        x: the (sub)sample's normalized features, (m, d).
        k_range: the smallest and the largest k tried.
        seed: seeds k-means.
    """
    from sklearn.metrics import silhouette_score

    distinct = len(np.unique(np.round(x, 5), axis=0))
    scores = {}
    for k in range(k_range[0], min(k_range[1], distinct - 1) + 1):
        assignment = _kmeans(k, seed).fit_predict(x)
        if len(np.unique(assignment)) < 2:
            continue
        scores[k] = float(silhouette_score(x, assignment, metric="euclidean"))
    return scores


def cluster_features(features: np.ndarray, *, k: int | None = None, k_range: tuple[int, int] = K_RANGE,
                     seed: int = 0, typical: int = TYPICAL) -> Clustering:
    """Cluster ``features`` by k-means on their L2-normalized rows, choosing k by silhouette unless given.

    Args:
        features: (n, d) frozen features of the pool, n >= :data:`MIN_ITEMS`.
        k: the number of clusters, or None to choose it: the k of ``k_range`` with the highest mean
            silhouette on a random subsample of :data:`SILHOUETTE_SAMPLE` items.
        k_range: the smallest and the largest k tried.
        seed: seeds the subsamples and k-means.
        typical: items kept as most typical of each cluster (nearest its centre).

    Returns:
        A :class:`Clustering`. Where every item is (nearly) the same, one cluster.
    """
    x = normalized(features)
    rng = np.random.default_rng(seed)
    sample = x if len(x) <= SILHOUETTE_SAMPLE else x[rng.choice(len(x), SILHOUETTE_SAMPLE, replace=False)]
    scores = silhouettes(sample, k_range, seed=seed)
    if k is None:
        k = max(scores, key=scores.get) if scores else min(len(np.unique(np.round(x, 5), axis=0)), 2)
    fit_rows = x if len(x) <= FIT_SAMPLE else x[rng.choice(len(x), FIT_SAMPLE, replace=False)]
    model = _kmeans(k, seed).fit(fit_rows)
    assignment = model.predict(x).astype(np.int64)
    centres = model.cluster_centers_.astype(np.float32)
    return Clustering(k=k, assignment=assignment, centres=centres, silhouettes=scores,
                      typical=nearest_to_centres(x, assignment, centres, typical))


def nearest_to_centres(x: np.ndarray, assignment: np.ndarray, centres: np.ndarray, n: int) -> list[np.ndarray]:
    """For each cluster, the positions of its ``n`` items nearest its centre, nearest first."""
    out = []
    for cluster, centre in enumerate(centres):
        members = np.flatnonzero(assignment == cluster)
        distance = np.linalg.norm(x[members] - centre, axis=1)
        out.append(members[np.argsort(distance, kind="stable")[:n]])
    return out


def pca_map(features: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, tuple[float, float]]:
    """The first two principal components of the normalized features, and the share of variance each explains.

    PCA rather than UMAP: it is deterministic, takes milliseconds, installs with scikit-learn, and its
    axes mean something (distances along them are distances in the features).
    """
    from sklearn.decomposition import PCA

    x = normalized(features)
    dims = min(2, x.shape[0], x.shape[1])
    pca = PCA(n_components=dims, random_state=seed).fit(x)
    points = pca.transform(x)
    if dims < 2:
        points = np.c_[points, np.zeros((len(points), 2 - dims))]
    shares = [float(v) for v in pca.explained_variance_ratio_] + [0.0] * (2 - dims)
    return points, (shares[0], shares[1])
