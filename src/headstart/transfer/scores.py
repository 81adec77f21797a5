"""Transferability scores: how well frozen features suit a labeled task, without fine-tuning.

Every score takes numpy arrays and returns one float, higher meaning "expected to transfer
better"; none keeps state (the cleanlab style). ``features`` is (n, d), ``labels`` integer
class ids (n,) in ``range(k)``.

- :func:`logme`: LogME, the log marginal evidence of a Bayesian linear model on the features
  (You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer Learning", ICML 2021).
- :func:`hscore`: H-score, tr(cov(f)^-1 cov(E[f|y])) (Bao et al., "An Information-theoretic Approach
  to Transferability in Task Transfer Learning", ICIP 2019), with the shrinkage estimate of cov(f)
  of Ibrahim et al. ("Newer is not always better: Rethinking transferability metrics, their
  peculiarities, stability and performance", ECML PKDD 2022) by default.
- :func:`nce`: negative conditional entropy -H(Y|Z) of the target labels given source labels
  (Tran et al., "Transferability and Hardness of Supervised Classification Tasks", ICCV 2019).
  For a backbone without source classes, :func:`nce_from_features` uses k-means clusters of the
  features as the source labels.
- :func:`leep`: Log Expected Empirical Prediction from source-class probabilities (Nguyen et al.,
  "LEEP: A New Measure to Evaluate Transferability of Learned Representations", ICML 2020).
- :func:`probe_accuracy`: cross-validated accuracy of a logistic-regression probe.

LogME, H-score and NCE are written here by hand: none is in scikit-learn or any other
dependency, and each is a few lines of linear algebra.
"""

from __future__ import annotations

import numpy as np

__all__ = ["logme", "hscore", "nce", "nce_from_features", "leep", "probe_accuracy", "SCORES"]


def _check(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if f.ndim != 2:
        raise ValueError(f"features must be a 2-D array (n, d), got shape {f.shape}")
    if y.ndim != 1 or len(y) != len(f):
        raise ValueError(f"labels must be 1-D with one label per row of features; got {y.shape} for {f.shape}")
    if len(y) < 2:
        raise ValueError("a transferability score needs at least two items")
    if y.dtype.kind not in "iu" or y.min() < 0:
        raise ValueError("labels must be non-negative integer class ids")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or infinite values")
    return f, y.astype(np.int64)


# -- LogME ----------------------------------------------------------------------------------------

def logme_evidence(features: np.ndarray, target: np.ndarray, *, max_iter: int = 100,
                   tol: float = 1e-6) -> tuple[float, float, float]:
    """Maximized log evidence of ``target`` (n,) under a Bayesian linear model, and its (alpha, beta).

    The model is y = f·w + noise, w ~ N(0, I/alpha), noise ~ N(0, 1/beta). The evidence is
    ``log N(y; 0, I/beta + F F^T / alpha)``; alpha and beta are found by MacKay's
    fixed-point updates (alpha = gamma / |m|^2, beta = (n - gamma) / |y - F m|^2), computed from
    one SVD of F as in the LogME paper's Algorithm 2.

    Returns:
        (evidence / n, alpha, beta).
    """
    f = np.asarray(features, dtype=np.float64)
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    return _logme_svd(u, s, np.asarray(target, dtype=np.float64), f.shape[1], max_iter=max_iter, tol=tol)


def _logme_svd(u, s, y, d, *, max_iter: int = 100, tol: float = 1e-6) -> tuple[float, float, float]:
    """:func:`logme_evidence` from the thin SVD ``u, s`` of the features (one SVD serves every class)."""
    n = len(y)
    sigma = s ** 2                        # non-zero eigenvalues of F^T F (the others are 0)
    z = u.T @ y                           # y in the left singular basis
    outside = max(float(y @ y - z @ z), 0.0)  # the part of y that no feature can explain
    alpha, beta = 1.0, 1.0
    for _ in range(max_iter):
        shrink = alpha + beta * sigma
        gamma = float((beta * sigma / shrink).sum())
        m_norm = float((beta * s * z / shrink) @ (beta * s * z / shrink))
        residual = float(((alpha * z / shrink) ** 2).sum()) + outside
        new_alpha = gamma / max(m_norm, 1e-12)
        new_beta = max(n - gamma, 1e-12) / max(residual, 1e-12)
        done = abs(new_alpha - alpha) <= tol * alpha and abs(new_beta - beta) <= tol * beta
        alpha, beta = new_alpha, new_beta
        if done:
            break
    return _log_evidence(alpha, beta, sigma, z, outside, n, d) / n, alpha, beta


def _log_evidence(alpha, beta, sigma, z, outside, n, d) -> float:
    """Log p(y | alpha, beta) of the linear model, from the SVD of F (Bishop, PRML eq. 3.86)."""
    shrink = alpha + beta * sigma
    m_norm = float(((beta * np.sqrt(sigma) * z / shrink) ** 2).sum())
    residual = float(((alpha * z / shrink) ** 2).sum()) + outside
    log_det = float(np.log(shrink).sum()) + (d - len(sigma)) * np.log(alpha)  # zero eigenvalues give alpha
    return (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - beta / 2 * residual - alpha / 2 * m_norm
            - log_det / 2 - n / 2 * np.log(2 * np.pi))


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME (You et al., ICML 2021): how well a Bayesian linear model on the features explains the labels.

    It is the mean over classes of the maximized log evidence per item of a Bayesian linear
    regression from the features to the one-hot label column.

    Args:
        features: (n, d) frozen features.
        labels: (n,) integer class ids.

    Returns:
        A float, typically between -2 and 2; higher means the features explain the labels
        better with less complexity.
    """
    f, y = _check(features, labels)
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    return float(np.mean([_logme_svd(u, s, (y == c).astype(np.float64), f.shape[1])[0] for c in np.unique(y)]))


# -- H-score --------------------------------------------------------------------------------------

def hscore(features: np.ndarray, labels: np.ndarray, *, shrinkage: bool = True) -> float:
    """H-score (Bao et al., ICIP 2019): ``tr(cov(f)^+ cov(E[f|y]))``.

    The between-class covariance is that of each item's class mean. With ``shrinkage`` the
    feature covariance is the Ledoit-Wolf estimate (Ibrahim et al., 2022), which keeps the score
    stable when d is large against n; without it, the plain covariance and its pseudo-inverse.

    Returns:
        A float in [0, d]; higher means classes are further apart relative to the feature spread.
    """
    f, y = _check(features, labels)
    n, d = f.shape
    f = f - f.mean(axis=0)
    class_means = np.zeros_like(f)
    for c in np.unique(y):
        class_means[y == c] = f[y == c].mean(axis=0)
    # Computed in the eigenbasis of the covariance, without forming d x d matrices: the class means
    # lie in the span of the (centered) items, so only the covariance's eigenvalues there matter:
    # tr(cov^-1 between) = sum_j |M v_j|^2 / n / eig_j, with v_j the right singular vectors of f.
    _, sv, vt = np.linalg.svd(f, full_matrices=False)
    eig = sv ** 2 / n
    spread = ((class_means @ vt.T) ** 2).sum(axis=0) / n
    if shrinkage:
        from sklearn.covariance import ledoit_wolf_shrinkage

        weight = ledoit_wolf_shrinkage(f, assume_centered=True)
        eig = (1 - weight) * eig + weight * eig.sum() / d  # Ledoit-Wolf: (1-w) S + w tr(S)/d I
        keep = eig > 0
    else:
        keep = eig > 1e-10 * eig.max()  # the pseudo-inverse's cut-off
    return float((spread[keep] / eig[keep]).sum())


# -- NCE and LEEP ---------------------------------------------------------------------------------

def nce(source_labels: np.ndarray, target_labels: np.ndarray) -> float:
    """NCE (Tran et al., ICCV 2019): ``-H(Y|Z)`` of target labels Y given source labels Z.

    Computed from their empirical joint distribution (natural log): 0 when Z determines Y,
    ``-H(Y)`` when Z says nothing.
    """
    z = np.asarray(source_labels).astype(np.int64)
    y = np.asarray(target_labels).astype(np.int64)
    if z.shape != y.shape or z.ndim != 1:
        raise ValueError(f"source and target labels must be 1-D of the same length, got {z.shape} and {y.shape}")
    joint = np.zeros((z.max() + 1, y.max() + 1))
    np.add.at(joint, (z, y), 1.0)
    joint /= len(y)
    p_z = joint.sum(axis=1, keepdims=True)
    nonzero = joint > 0
    return float((joint[nonzero] * np.log((joint / np.where(p_z > 0, p_z, 1.0))[nonzero])).sum())


def nce_from_features(features: np.ndarray, labels: np.ndarray, *, n_clusters: int | None = None,
                      seed: int = 0) -> float:
    """NCE with k-means clusters of the (standardized) features as the source labels.

    For backbones without source classes, in the spirit of N-LEEP (Li et al., CVPR 2021, which
    uses a Gaussian mixture). ``n_clusters`` defaults to ``max(2k, min(n / 10, 64))``, at most n / 2.
    """
    from sklearn.cluster import KMeans

    f, y = _check(features, labels)
    k = len(np.unique(y))
    clusters = n_clusters or int(max(2 * k, min(len(y) // 10, 64)))
    clusters = max(2, min(clusters, len(y) // 2))
    scale = f.std(axis=0)
    standardized = (f - f.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    assignment = KMeans(n_clusters=clusters, n_init=3, random_state=seed).fit_predict(standardized)
    return nce(assignment, y)


def leep(source_proba: np.ndarray, labels: np.ndarray) -> float:
    """LEEP (Nguyen et al., ICML 2020) from source-class probabilities θ(x) (n, z) of each item.

    With the empirical conditional P(y|z) = Σ_i θ(x_i)_z [y_i = y] / Σ_i θ(x_i)_z, it is
    ``(1/n) Σ_i log Σ_z P(y_i|z) θ(x_i)_z``: the mean log-likelihood of the 'expected empirical
    predictor'. A value <= 0; closer to 0 is better. With one-hot θ it equals :func:`nce`.
    """
    theta, y = _check(source_proba, labels)
    if np.any(theta < 0) or not np.allclose(theta.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("source_proba must hold probabilities: non-negative rows that sum to 1")
    onehot = np.zeros((len(y), y.max() + 1))
    onehot[np.arange(len(y)), y] = 1.0
    joint = theta.T @ onehot / len(y)                       # P(z, y), (z, k)
    conditional = joint / np.maximum(joint.sum(axis=1, keepdims=True), 1e-300)  # P(y | z)
    eep = (theta @ conditional)[np.arange(len(y)), y]
    return float(np.mean(np.log(np.maximum(eep, 1e-300))))


# -- a probe --------------------------------------------------------------------------------------

PROBE_C = (0.01, 0.1, 1.0)


def probe_accuracy(features: np.ndarray, labels: np.ndarray, *, folds: int = 5, seed: int = 0,
                   c_grid=PROBE_C) -> float:
    """Cross-validated accuracy of a standardized logistic-regression probe.

    Stratified ``folds`` (fewer when the smallest class has fewer items); the best mean accuracy
    over ``c_grid``. Choosing C on the same folds is slightly optimistic, and equally so for every
    backbone, which is what a ranking needs.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    f, y = _check(features, labels)
    smallest = np.bincount(y)[np.unique(y)].min()
    n_folds = int(min(folds, smallest))
    if n_folds < 2:
        raise ValueError("probe accuracy needs at least two items of every class")
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    correct = np.zeros(len(c_grid))
    for train, test in splitter.split(f, y):
        scaler = StandardScaler().fit(f[train])
        a, b = row_space(scaler.transform(f[train]), scaler.transform(f[test]))
        # One model along the C path, weakest regularization last: each fit starts from the last
        # solution, so the later fits take a few iterations instead of dozens. tol=1e-2: the
        # predicted classes settle long before the loss does (same accuracies as at 1e-4, in a
        # fraction of the time: benchmarks/README.md).
        model = LogisticRegression(max_iter=500, tol=1e-2, warm_start=True, random_state=seed)
        for i in np.argsort(c_grid):
            model.set_params(C=c_grid[i]).fit(a, y[train])
            correct[i] += (model.predict(b) == y[test]).sum()
    return float(correct.max() / len(y))


def row_space(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets in coordinates of the span of the training rows, when there are fewer rows than features.

    An L2-regularized linear model's optimal weights lie in that span (its gradient is a
    combination of the rows), so its predictions are unchanged, and fitting is much faster.

    The basis comes from the eigenvectors of the rows' Gram matrix (n x n) rather than an SVD of the
    (n x d) rows: with train = U S Vt, the coordinates are U S for the training rows and
    test @ train.T @ U / S for the others.
    """
    if train.shape[0] >= train.shape[1]:
        return train, test
    eigenvalues, u = np.linalg.eigh(train @ train.T)
    keep = eigenvalues > 1e-10 * eigenvalues.max()
    u, s = u[:, keep], np.sqrt(eigenvalues[keep])
    return u * s, (test @ train.T) @ (u / s)


# name -> description, in table order; LEEP needs source probabilities.
SCORES = {
    "logme": "LogME (You et al. 2021): log evidence of a Bayesian linear model, per item",
    "hscore": "H-score (Bao et al. 2019), shrinkage covariance (Ibrahim et al. 2022)",
    "nce": "NCE (Tran et al. 2019): -H(Y|Z), Z = source classes, or k-means clusters without them",
    "leep": "LEEP (Nguyen et al. 2020): from the source (ImageNet) classifier; only where there is one",
    "probe": "cross-validated accuracy of a logistic-regression probe",
}
