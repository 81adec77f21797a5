"""Where a labeled pool's classes and its features disagree: classes to merge, classes to split.

- A candidate **merge** is a pair of classes whose items' nearest neighbours (cosine, on frozen
  features) are often of the other class: the features do not tell them apart, so either the
  labels are inconsistent between the two or the distinction needs more than this backbone sees.
- A candidate **split** is a class whose items form two groups: k-means with k = 2 on the class
  alone, with a mean silhouette of at least ``SPLIT_SILHOUETTE`` and a smaller part of at least
  ``SPLIT_MIN_SHARE`` of the class: a coarse label that may hide two kinds of item.

Both read features only (no model is trained), so they are cheap and show what a probe on the
same features will find hard.
"""

from __future__ import annotations

import numpy as np

from headstart.evaluate.clusters import SILHOUETTE_SAMPLE, TYPICAL, nearest_to_centres, normalized

__all__ = ["merge_candidates", "split_candidates", "NEIGHBOURS", "MERGE_MIXING", "SPLIT_SILHOUETTE"]

NEIGHBOURS = 10         # nearest neighbours each item's class is compared with
KNN_SAMPLE = 5_000      # items the neighbours are found among (a stratified-enough random subsample)
# A pair is a merge candidate when the two classes are at least three quarters as mixed among each
# other's neighbours as they would be if they were one class (mixing 1.0: their labels could be
# shuffled). On minilm-l6 features, SST-2's negative/positive reach 0.73 (37% of neighbours of the
# other class) though a probe tells them apart at ~85%: neighbours see topic more than sentiment, so
# half-mixed is common between classes a linear head still separates; TREC's abbreviation/description
# reach 0.88.
MERGE_MIXING = 0.75
# Kaufman & Rousseeuw's lower bound of "weak structure": below it, two halves of one cloud.
SPLIT_SILHOUETTE = 0.25
SPLIT_MIN_SHARE = 0.1   # the smaller part holds at least this share of the class
SPLIT_MIN_ITEMS = 10    # classes with fewer items are not split


def neighbour_classes(features: np.ndarray, label_ids: np.ndarray, n_neighbours: int = NEIGHBOURS) -> np.ndarray:
    """The class ids of each item's ``n_neighbours`` nearest other items (cosine), shape (n, m)."""
    from sklearn.neighbors import NearestNeighbors

    x = normalized(features)
    m = min(n_neighbours, len(x) - 1)
    index = NearestNeighbors(n_neighbors=m + 1).fit(x).kneighbors(x, return_distance=False)
    own = index == np.arange(len(x))[:, None]
    # drop each item itself (or, among exact duplicates, the last column) so m neighbours remain
    keep = np.where(own.any(axis=1, keepdims=True), ~own, np.arange(m + 1) < m)
    return label_ids[index[keep].reshape(len(x), m)]


def merge_candidates(features: np.ndarray, label_ids: np.ndarray, classes: list[str], *, seed: int = 0,
                     n_neighbours: int = NEIGHBOURS, threshold: float = MERGE_MIXING) -> list[dict]:
    """Pairs of classes whose items' nearest neighbours are often of the other class, most mixed first.

    Args:
        features: (n, d) frozen features of labeled items.
        label_ids: (n,) class ids into ``classes``.
        classes: the class names.
        seed: seeds the subsample the neighbours are found among.
        n_neighbours: neighbours an item is compared with.
        threshold: the smallest ``mixing`` flagged.

    Returns:
        One dict a flagged pair: ``classes`` (the two names), ``rate`` (the share of the two classes'
        items' neighbours that are of the other class of the pair), ``mixing`` (that count over
        the count expected were the two one class: neighbours drawn from the pair at random),
        ``items`` (the pair's items looked at).
    """
    rng = np.random.default_rng(seed)
    rows = np.arange(len(label_ids)) if len(label_ids) <= KNN_SAMPLE else np.sort(
        rng.choice(len(label_ids), KNN_SAMPLE, replace=False))
    y = label_ids[rows]
    near = neighbour_classes(features[rows], y, n_neighbours)
    m = near.shape[1]
    counts = np.bincount(y, minlength=len(classes))
    # cross[a, b]: neighbours of class b among the neighbours of class a's items
    cross = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(cross, (np.repeat(y, m), near.ravel()), 1)
    found = []
    for a in range(len(classes)):
        for b in range(a + 1, len(classes)):
            n_a, n_b = counts[a], counts[b]
            if n_a < 2 or n_b < 2:
                continue
            observed = cross[a, b] + cross[b, a]
            # were a and b one class, a neighbour of an a-item inside the pair is a b-item with
            # probability n_b / (n_a + n_b - 1); this counts the neighbours that stay inside the pair
            in_pair = cross[a, a] + cross[a, b] + cross[b, a] + cross[b, b]
            expected_share = (n_a * n_b / (n_a + n_b - 1) * 2) / (n_a + n_b)
            mixing = (observed / in_pair) / expected_share if in_pair else 0.0
            if mixing >= threshold:
                found.append({"classes": [classes[a], classes[b]], "rate": float(observed / (m * (n_a + n_b))),
                              "mixing": float(mixing), "items": int(n_a + n_b)})
    return sorted(found, key=lambda pair: -pair["mixing"])


def class_two_means(x: np.ndarray, *, seed: int = 0) -> tuple[float, np.ndarray, np.ndarray]:
    """k-means with k = 2 on one class's normalized features: (mean silhouette, assignment, centres)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    model = KMeans(n_clusters=2, n_init=4, random_state=seed).fit(x)
    assignment = model.labels_
    if len(np.unique(assignment)) < 2:
        return 0.0, assignment, model.cluster_centers_
    sample = None if len(x) <= SILHOUETTE_SAMPLE else SILHOUETTE_SAMPLE
    return (float(silhouette_score(x, assignment, sample_size=sample, random_state=seed)), assignment,
            model.cluster_centers_.astype(np.float32))


def split_candidates(features: np.ndarray, label_ids: np.ndarray, classes: list[str], *, seed: int = 0,
                     threshold: float = SPLIT_SILHOUETTE, typical: int = TYPICAL) -> tuple[list[dict], dict]:
    """Classes whose items form two groups of their own, most separated first.

    Args:
        features: (n, d) frozen features of labeled items.
        label_ids: (n,) class ids into ``classes``.
        classes: the class names.
        seed: seeds k-means.
        threshold: the smallest mean silhouette of the two-way split flagged.
        typical: items kept as most typical of each part.

    Returns:
        ``(flagged, checked)``: flagged is one dict a candidate class, ``class``, ``silhouette``,
        ``sizes`` (the two parts, larger first) and ``typical`` (for each part, positions into
        ``features`` nearest its centre); checked maps every class with enough items to its silhouette.
    """
    x = normalized(features)
    flagged, checked = [], {}
    for c, name in enumerate(classes):
        members = np.flatnonzero(label_ids == c)
        if len(members) < SPLIT_MIN_ITEMS or len(np.unique(np.round(x[members], 5), axis=0)) < 3:
            continue
        score, assignment, centres = class_two_means(x[members], seed=seed)
        checked[name] = score
        sizes = np.bincount(assignment, minlength=2)
        if score < threshold or sizes.min() < SPLIT_MIN_SHARE * len(members):
            continue
        order = np.argsort(-sizes, kind="stable")
        parts = nearest_to_centres(x[members], assignment, centres, typical)
        flagged.append({"class": name, "silhouette": score, "sizes": sizes[order].tolist(),
                        "typical": [members[parts[i]] for i in order]})
    return sorted(flagged, key=lambda entry: -entry["silhouette"]), checked
