"""CORAL: align the source features' second-order statistics with the target's (Sun, Feng & Saenko 2016).

"Return of frustratingly easy domain adaptation": whiten the source features with their own
covariance, re-colour them with the target's, and train the classifier on the result; the
classifier then reads the target's features as they are. Each covariance gets the identity added,
as in the paper, on features standardized with the source's scale, so the regularization means the
same whatever the backbone's feature scale. The means are moved too (source mean to target mean):
the covariance alone leaves a shifted mean on the wrong side of the decision boundary.

The map is linear, so the adapted model is an ordinary head on the backbone's features: it saves,
predicts and exports like any other.
"""

from __future__ import annotations

import numpy as np

REGULARIZATION = 1.0  # the identity added to each covariance (the paper's choice), in source-standard units


def _matrix_power(covariance: np.ndarray, power: float) -> np.ndarray:
    """``covariance ** power`` of a symmetric positive definite matrix, by its eigendecomposition."""
    values, vectors = np.linalg.eigh(covariance)
    return (vectors * np.maximum(values, 1e-12) ** power) @ vectors.T


def coral_map(source: np.ndarray, target: np.ndarray, *,
              regularization: float = REGULARIZATION) -> tuple[np.ndarray, np.ndarray]:
    """The affine map ``x @ matrix + offset`` that gives source features the target's mean and covariance.

    Args:
        source: source features (n, d).
        target: target features (m, d), m >= 2.
        regularization: the identity added to both covariances, in units of the source's per-feature
            standard deviation.

    Returns:
        (matrix (d, d), offset (d,)), float64.
    """
    scale = source.std(axis=0)
    scale = np.maximum(scale, 1e-2 * np.median(scale) + 1e-12)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    eye = regularization * np.eye(source.shape[1])
    source_cov = np.cov((source - source_mean) / scale, rowvar=False) + eye
    target_cov = np.cov((target - target_mean) / scale, rowvar=False) + eye
    # x -> standardize -> whiten (Cs^-1/2) -> re-colour (Ct^1/2) -> unstandardize
    core = _matrix_power(source_cov, -0.5) @ _matrix_power(target_cov, 0.5)
    matrix = (core / scale[:, None]) * scale[None, :]
    return matrix, target_mean - source_mean @ matrix


def coral_align(source: np.ndarray, target: np.ndarray, *, regularization: float = REGULARIZATION) -> np.ndarray:
    """Source features re-coloured with the target's statistics (see :func:`coral_map`), float32."""
    matrix, offset = coral_map(source, target, regularization=regularization)
    return (source @ matrix + offset).astype(np.float32)
