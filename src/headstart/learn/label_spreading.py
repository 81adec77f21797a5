"""Label spreading on the k-nearest-neighbour graph of features.

The labels of a few items flow along the graph to their neighbours and on (Zhou et al. 2004,
"Learning with local and global consistency"): with S the symmetrically normalized affinity matrix
and Y the labeled items' one-hot rows, F = (1 - alpha) (I - alpha S)^-1 Y, computed by iterating
F <- alpha S F + (1 - alpha) Y. The graph is sparse: each item's k nearest others by cosine
similarity of centred features, weighted by similarity**gamma and made symmetric (Iscen et al. 2019,
"Label propagation for deep semi-supervised learning", who spread labels the same way on a
network's features and then train on them). Each class's seed rows are scaled by its count so a
class with more labels does not flood the graph. Written here, not scikit-learn's LabelSpreading,
whose kNN graph and dense iterations are slower on 10,000 items.
"""

from __future__ import annotations

import numpy as np

NEIGHBOURS = 10
ALPHA = 0.99
GAMMA = 3
ITERATIONS = 30
BLOCK = 1024  # rows of similarities at a time: n x n of a large pool would not fit


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32)."""
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def nearest_neighbours(features: np.ndarray, k: int = NEIGHBOURS, *,
                       centre: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(positions, cosine similarities), each (n, k), of each item's k nearest other items.

    ``centre`` subtracts the mean feature first: features that are all positive (pooled ReLU
    activations) are otherwise all similar to each other.
    """
    features = np.asarray(features, dtype=np.float32)
    unit = unit_rows(features - features.mean(axis=0) if centre else features)
    k = min(k, len(features) - 1)
    positions = np.zeros((len(features), k), dtype=np.int64)
    similarities = np.zeros((len(features), k), dtype=np.float32)
    for start in range(0, len(features), BLOCK):
        similarity = unit[start:start + BLOCK] @ unit.T
        rows = np.arange(similarity.shape[0])
        similarity[rows, rows + start] = -np.inf  # not one's own neighbour
        nearest = np.argpartition(-similarity, k, axis=1)[:, :k]
        positions[start:start + len(rows)] = nearest
        similarities[start:start + len(rows)] = np.take_along_axis(similarity, nearest, axis=1)
    return positions, similarities


def neighbour_graph(features: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Positions (n, k) of each item's k nearest other items by cosine similarity."""
    return nearest_neighbours(features, k)[0]


def affinity(positions: np.ndarray, similarities: np.ndarray, *, gamma: float = GAMMA):
    """The symmetric, normalized affinity matrix D^-1/2 W D^-1/2 (scipy CSR) of a neighbour graph."""
    from scipy import sparse

    n, k = positions.shape
    weights = np.maximum(similarities, 0).astype(np.float64) ** gamma
    w = sparse.csr_matrix((weights.ravel(), (np.repeat(np.arange(n), k), positions.ravel())), shape=(n, n))
    w = w + w.T
    degree = np.asarray(w.sum(axis=1)).ravel()
    scale = sparse.diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    return (scale @ w @ scale).tocsr()


def spread_labels(graph, seeds: np.ndarray, labels: np.ndarray, n_classes: int, *, alpha: float = ALPHA,
                  iterations: int = ITERATIONS) -> np.ndarray:
    """Class distributions (n, n_classes) of every node after spreading ``labels`` from ``seeds``.

    Args:
        graph: :func:`affinity` of the items' neighbour graph.
        seeds: positions of the labeled nodes.
        labels: their class ids.
        n_classes: the distributions' width.
        alpha: how far labels flow (0: not at all; near 1: far along the graph).
        iterations: of the fixed-point iteration (alpha**30 is 0.74 of the way at 0.99, and the
            ranking of classes settles well before the values do).

    Returns:
        Rows summing to 1 (uniform for a node no label reached).
    """
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    start = np.zeros((graph.shape[0], n_classes))
    start[seeds, labels] = 1.0 / np.maximum(counts[labels], 1)
    spread = start.copy()
    for _ in range(iterations):
        spread = alpha * (graph @ spread) + (1 - alpha) * start
    total = spread.sum(axis=1, keepdims=True)
    return np.where(total > 0, spread / np.where(total > 0, total, 1), 1.0 / n_classes)
