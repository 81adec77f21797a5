"""Active-learning strategies: which unlabeled items a person should label next.

Functions take arrays and return arrays of positions, with no hidden state (like cleanlab's
``find_label_issues``):

    picked = select("margin", 20, proba=proba, features=features, labeled=labeled_mask, labels=y)

- ``random``; ``least-confidence``, ``margin`` (breaking ties), ``entropy``: uncertainty of ``proba``;
- ``kcenter``: k-center greedy on ``features`` (Sener & Savarese, 2018), away from labeled items;
- ``badge``: k-means++ seeding on gradient embeddings (Ash et al., 2020), computed without ever
  forming the (n, k*d) embeddings: <g_i, g_j> = (a_i . a_j)(x_i . x_j) with a = p - onehot(argmax p);
- ``margin-diverse`` (the default): the 10*n smallest margins, clustered into n groups by k-means
  weighted by uncertainty, and the item nearest each centre (Zhdanov, 2019): uncertain items,
  not n near-copies of one;
- ``class-balanced``: for the classes with the fewest labels, the items most likely of that class
  (it finds rare classes);
- a cold start (no model yet, or fewer than two classes labeled) picks diverse, typical items:
  the items nearest the centres of k-means on the features.

Everything is vectorized numpy (float32): choosing 20 of 100,000 cached items takes well under a
second (``benchmarks/strategy_speed.py`` measures it). These are written here rather than taken
from small-text or modAL because those work on their own classifier objects and datasets, and
the timing target needs the memory-light BADGE identity above.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from headstart.errors import LabelingError

# margin-diverse is the default because it measured best with the loop's probe
# (retrain.fit_loop_probe), start 10, batches of 20, labels to reach 95% of the full-pool probe
# (benchmarks/active_learning.py, 10 seeds): on Fashion-MNIST (effnet-lite0) it needed 314 against
# margin's 366 and random's 642 (seed by seed 52 fewer than margin, 95% interval 6-98); on SST-2
# (minilm-l6) 318 against margin's 334 and random's 362, where every strategy tried stays within
# the seeds' spread (150 to 630 labels).
# The k-center version of the same idea (farthest items of the shortlist) needed 558 on
# Fashion-MNIST: it picks outliers, where k-means picks typical items of each uncertain region.
DEFAULT_STRATEGY = "margin-diverse"
PROJECTION_DIM = 64          # distances for k-center/cold start use a random projection above this width
KMEANS_SAMPLE = 5_000       # cold start fits k-means on at most this many items
DIVERSITY_POOL = 20_000     # k-center and cold start look at a random subset of at most this many candidates
SHORTLIST_FACTOR = 10       # margin-diverse clusters the 10*n most uncertain candidates


# -- uncertainty scores: higher is more worth labeling ------------------------------------------

def least_confidence(proba: np.ndarray) -> np.ndarray:
    return 1.0 - proba.max(axis=1)


def margin(proba: np.ndarray) -> np.ndarray:
    top2 = np.partition(proba, -2, axis=1)[:, -2:] if proba.shape[1] > 1 else np.zeros((len(proba), 2))
    return -(top2[:, 1] - top2[:, 0])


def entropy(proba: np.ndarray) -> np.ndarray:
    # float64, rows renormalized: near the top of the entropy (p near 1/k) differences in p shrink
    # quadratically, so in float32, or with rows that sum to 1 only up to float32 rounding, the most
    # uncertain items of a weak model all tie and are taken in pool order.
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)
    p /= p.sum(axis=1, keepdims=True)
    return -(p * np.log(p)).sum(axis=1)


SCORES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "least-confidence": least_confidence, "margin": margin, "entropy": entropy}


def top_scores(scores: np.ndarray, candidates: np.ndarray, n: int) -> np.ndarray:
    """Positions (from ``candidates``) of the ``n`` highest scores, highest first."""
    values = scores[candidates]
    if n < len(candidates):
        part = np.argpartition(-values, n - 1)[:n]
    else:
        part = np.arange(len(candidates))
    return candidates[part[np.argsort(-values[part], kind="stable")]]


# -- diversity ----------------------------------------------------------------------------------

def _compact(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """float32 features, randomly projected to PROJECTION_DIM when wider (distances kept up to
    a few percent, Johnson-Lindenstrauss), so that distance passes over 100,000 items stay fast."""
    x = np.asarray(features, dtype=np.float32)
    if x.shape[1] <= PROJECTION_DIM:
        return x
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((x.shape[1], PROJECTION_DIM)).astype(np.float32)
    projection *= np.float32(1.0 / np.sqrt(PROJECTION_DIM))
    return x @ projection


def _min_sq_distance(x: np.ndarray, centers: np.ndarray, x_norm: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """min over ``centers`` of the squared distance of each row of ``x``, shape (len(x),), float32.
    Rows go in chunks so that the (chunk, centers) matrix stays small."""
    best = np.full(len(x), np.inf, dtype=np.float32)
    if len(centers) == 0:
        return best
    c_norm = (centers * centers).sum(1)
    for start in range(0, len(x), chunk):
        block = x[start:start + chunk] @ centers.T
        block *= -2.0
        block += c_norm[None, :]
        best[start:start + chunk] = block.min(axis=1) + x_norm[start:start + chunk]
    return np.maximum(best, 0.0)


def kcenter_greedy(features: np.ndarray, candidates: np.ndarray, centers: np.ndarray, n: int,
                   seed: int = 0) -> np.ndarray:
    """k-center greedy: repeatedly the candidate farthest from every center (labeled or picked)."""
    if len(candidates) > DIVERSITY_POOL:  # the farthest of 20,000 random candidates is about as far
        rng = np.random.default_rng(seed)
        candidates = np.sort(rng.choice(candidates, DIVERSITY_POOL, replace=False))
    centers = np.asarray(centers, dtype=np.int64)
    both = _compact(features[np.concatenate([candidates, centers])], seed)
    cand, x_centers = both[:len(candidates)], both[len(candidates):]
    norm = (cand * cand).sum(1)
    to = lambda j: np.maximum(norm + norm[j] - 2.0 * (cand @ cand[j]), 0.0)  # noqa: E731
    dist = _min_sq_distance(cand, x_centers, norm)
    chosen: list[int] = []
    if not np.isfinite(dist).any():  # no centers yet: start from the item nearest the mean
        mean = cand.mean(0)
        chosen.append(int(np.argmin(norm - 2.0 * (cand @ mean))))
        dist = to(chosen[0])
        dist[chosen[0]] = -1.0
    while len(chosen) < min(n, len(candidates)):
        pick = int(np.argmax(dist))
        chosen.append(pick)
        np.minimum(dist, to(pick), out=dist)
        dist[pick] = -1.0
    return candidates[np.asarray(chosen, dtype=np.int64)]


def cold_start(features: np.ndarray, candidates: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Diverse, typical items with no model: the candidate nearest each centre of k-means (k = n)."""
    from sklearn.cluster import KMeans

    n = min(n, len(candidates))
    if n == 0:
        return candidates[:0]
    rng = np.random.default_rng(seed)
    if len(candidates) > DIVERSITY_POOL:
        candidates = np.sort(rng.choice(candidates, DIVERSITY_POOL, replace=False))
    x = _compact(features[candidates], seed)
    sample = x if len(x) <= KMEANS_SAMPLE else x[rng.choice(len(x), KMEANS_SAMPLE, replace=False)]
    if len(sample) <= n:
        return candidates[:n]
    kmeans = KMeans(n_clusters=n, random_state=seed, n_init=1, max_iter=10).fit(sample)
    return candidates[_nearest_distinct(x, kmeans.cluster_centers_.astype(np.float32))]


def margin_clusters(features: np.ndarray, proba: np.ndarray, candidates: np.ndarray, n: int,
                    seed: int = 0, shortlist_factor: int = SHORTLIST_FACTOR) -> np.ndarray:
    """The ``shortlist_factor * n`` candidates of smallest margin, grouped by k-means (k = n, each item
    weighted by 1 - margin) on their features; from each group, the item nearest its centre."""
    from sklearn.cluster import KMeans

    scores = margin(proba)
    shortlist = top_scores(scores, candidates, min(len(candidates), shortlist_factor * n))
    if len(shortlist) <= n:
        return shortlist
    x = _compact(features[shortlist], seed)
    kmeans = KMeans(n_clusters=n, random_state=seed, n_init=1, max_iter=50)
    kmeans.fit(x, sample_weight=1.0 + scores[shortlist] + 1e-6)  # 1 - margin, never 0
    chosen = shortlist[_nearest_distinct(x, kmeans.cluster_centers_.astype(np.float32))]
    return chosen[np.argsort(-scores[chosen], kind="stable")]  # most uncertain first


def _nearest_distinct(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """For each centre, the row of ``x`` nearest it that no other centre took; centres with the
    nearest rows choose first."""
    d = (x * x).sum(1)[:, None] + (centres * centres).sum(1)[None, :] - 2.0 * (x @ centres.T)
    taken = np.zeros(len(x), dtype=bool)
    chosen = []
    for column in np.argsort(d.min(axis=0)):
        order = np.argsort(d[:, column])
        row = order[np.argmax(~taken[order])]
        taken[row] = True
        chosen.append(row)
    return np.asarray(chosen, dtype=np.int64)


def badge(features: np.ndarray, proba: np.ndarray, candidates: np.ndarray, n: int, seed: int = 0,
          sq_norms: np.ndarray | None = None) -> np.ndarray:
    """BADGE: k-means++ seeding on the gradient embeddings of the candidates (see the module notes).
    ``sq_norms``: every item's squared feature norm, when kept (else read from ``features``)."""
    rng = np.random.default_rng(seed)
    p = np.asarray(proba[candidates], dtype=np.float32)
    a = p.copy()
    a[np.arange(len(a)), p.argmax(1)] -= 1.0
    a_norm = (a * a).sum(1)
    if len(candidates) > DIVERSITY_POOL:
        # D^2 sampling almost never picks a near-zero embedding (a confident item): keep the
        # DIVERSITY_POOL largest gradient norms, computed from the probabilities and row norms alone.
        x_norm = sq_norms[candidates] if sq_norms is not None else _row_sq_norms(features, candidates)
        keep = np.sort(np.argpartition(-(a_norm * x_norm), DIVERSITY_POOL - 1)[:DIVERSITY_POOL])
        candidates, a, a_norm = candidates[keep], a[keep], a_norm[keep]
    x = np.asarray(features[candidates], dtype=np.float32)
    sq_norm = a_norm * (x * x).sum(1)
    first = int(np.argmax(sq_norm))
    chosen = [first]

    def sq_dist_to(j: int) -> np.ndarray:
        return np.maximum(sq_norm + sq_norm[j] - 2.0 * (a @ a[j]) * (x @ x[j]), 0.0)

    dist = sq_dist_to(first)
    while len(chosen) < min(n, len(candidates)):
        total = float(dist.sum())
        if total <= 0:  # every remaining embedding equals a chosen one
            rest = np.setdiff1d(np.arange(len(candidates)), chosen)
            chosen += list(rng.choice(rest, min(n - len(chosen), len(rest)), replace=False))
            break
        pick = int(rng.choice(len(dist), p=dist / total))
        chosen.append(pick)
        np.minimum(dist, sq_dist_to(pick), out=dist)
        dist[chosen] = 0.0
    return candidates[np.asarray(chosen, dtype=np.int64)]


def _row_sq_norms(features: np.ndarray, rows: np.ndarray, chunk: int = 16384) -> np.ndarray:
    out = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), chunk):
        block = np.asarray(features[rows[start:start + chunk]], dtype=np.float32)
        out[start:start + chunk] = (block * block).sum(1)
    return out


def class_balanced(proba: np.ndarray, candidates: np.ndarray, n: int, label_counts: np.ndarray) -> np.ndarray:
    """Each pick goes to the class with the fewest labels so far (picks included): the candidate most
    likely of that class. Finds items of rare classes that uncertainty sampling rarely shows."""
    counts = np.asarray(label_counts, dtype=np.float64).copy()
    n = min(n, len(candidates))
    ranked = {c: list(top_scores(proba[:, c], candidates, n)) for c in range(proba.shape[1])}
    taken: set[int] = set()
    chosen: list[int] = []
    while len(chosen) < n:
        c = int(np.argmin(counts))
        while ranked[c] and ranked[c][0] in taken:
            ranked[c].pop(0)
        if not ranked[c]:
            counts[c] = np.inf
            if np.isinf(counts).all():
                break
            continue
        pick = int(ranked[c].pop(0))
        taken.add(pick)
        chosen.append(pick)
        counts[c] += 1
    return np.asarray(chosen, dtype=np.int64)


# -- one entry point ------------------------------------------------------------------------------

STRATEGIES = ("random", "least-confidence", "margin", "entropy", "kcenter", "badge", "margin-diverse",
              "class-balanced")


def select(strategy: str, n: int, *, proba: np.ndarray | None = None, features: np.ndarray | None = None,
           labeled: np.ndarray | None = None, labels: np.ndarray | None = None,
           candidates: np.ndarray | None = None, seed: int = 0, sq_norms: np.ndarray | None = None) -> np.ndarray:
    """Positions of the next ``n`` items to label, most useful first.

    Args:
        strategy: one of :data:`STRATEGIES` or ``"default"`` (:data:`DEFAULT_STRATEGY`).
        n: batch size.
        proba: class probabilities of every item (N, k) from the current model; None before any model.
        features: features of every item (N, d); needed by kcenter, badge, margin-diverse and a cold start.
        labeled: boolean mask (N,) of labeled items (centers for k-center; never picked).
        labels: class ids (N,) of labeled items (-1 elsewhere), for class-balanced sampling.
        candidates: positions that may be picked (default: every unlabeled item).
        seed: for random choices.
        sq_norms: every item's squared feature norm (N,), when the caller keeps them (badge on a big pool).

    Returns:
        int64 positions, at most ``n``. Without ``proba`` (or with fewer than two labeled
        classes) any strategy but ``random`` is a cold start on ``features``.
    """
    strategy = DEFAULT_STRATEGY if strategy == "default" else strategy
    if strategy not in STRATEGIES:
        raise LabelingError(f"unknown strategy '{strategy}'", where="--strategy",
                            fix=f"use one of: default, {', '.join(STRATEGIES)}")
    size = len(proba) if proba is not None else len(features) if features is not None else None
    if size is None:
        raise ValueError("select needs proba or features")
    labeled = np.zeros(size, dtype=bool) if labeled is None else np.asarray(labeled, dtype=bool)
    if candidates is None:
        candidates = np.flatnonzero(~labeled)
    candidates = np.asarray(candidates, dtype=np.int64)
    n = int(min(n, len(candidates)))
    if n <= 0:
        return candidates[:0]
    rng = np.random.default_rng(seed)
    if strategy == "random":
        return rng.choice(candidates, n, replace=False)
    too_few = labels is not None and len(np.unique(labels[labels >= 0])) < 2  # a model of one class knows nothing
    if proba is None or too_few and strategy != "kcenter":
        if features is None:
            return rng.choice(candidates, n, replace=False)
        if labeled.any():
            return kcenter_greedy(features, candidates, np.flatnonzero(labeled), n, seed)
        return cold_start(features, candidates, n, seed)
    if strategy in SCORES:
        return top_scores(SCORES[strategy](proba), candidates, n)
    if strategy == "kcenter":
        return kcenter_greedy(_need(features, strategy), candidates, np.flatnonzero(labeled), n, seed)
    if strategy == "badge":
        return badge(_need(features, strategy), proba, candidates, n, seed, sq_norms)
    if strategy == "margin-diverse":
        return margin_clusters(_need(features, strategy), proba, candidates, n, seed)
    counts = np.bincount(labels[labels >= 0], minlength=proba.shape[1]) if labels is not None \
        else np.zeros(proba.shape[1])
    return class_balanced(proba, candidates, n, counts)


def _need(features: np.ndarray | None, strategy: str) -> np.ndarray:
    if features is None:
        raise LabelingError(f"strategy '{strategy}' needs the items' features", where="--strategy",
                            fix="compute features first, or use margin")
    return features
