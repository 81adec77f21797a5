"""What adaptation takes from :mod:`headstart.transfer`: EM class priors and the domain classifier.

``headstart.transfer.priors.em_priors`` and ``headstart.transfer.shift.domain_probabilities`` are
written beside ``headstart shift``; until they are on this branch, the minimal versions below stand
in, with the same signatures. TEMPORARY: delete the fallbacks once both modules are merged.
"""

from __future__ import annotations

import numpy as np

try:
    from headstart.transfer.priors import em_priors
except ImportError:  # TEMPORARY fallback, see the module's docstring
    def em_priors(target_proba: np.ndarray, source_priors: np.ndarray, *, max_iter: int = 100,
                  tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
        """Target class priors by EM (Saerens, Latinne & Decaestecker 2002), and the reweighted probabilities."""
        source_priors = np.asarray(source_priors, dtype=np.float64)
        priors, proba = source_priors.copy(), np.asarray(target_proba, dtype=np.float64)
        reweighted = proba
        for _ in range(max_iter):
            reweighted = proba * (priors / source_priors)
            reweighted /= reweighted.sum(axis=1, keepdims=True)
            new = reweighted.mean(axis=0)
            done = np.abs(new - priors).max() < tol
            priors = new
            if done:
                break
        return priors, reweighted

try:
    from headstart.transfer.shift import domain_probabilities
except ImportError:  # TEMPORARY fallback, see the module's docstring
    def domain_probabilities(source_features: np.ndarray, target_features: np.ndarray, *, seed: int = 0,
                             folds: int = 5) -> np.ndarray:
        """Cross-validated p(target) of every item, source rows first, from a logistic domain classifier."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_predict, StratifiedKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = np.vstack([source_features, target_features])
        y = np.r_[np.zeros(len(source_features)), np.ones(len(target_features))]
        classifier = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return cross_val_predict(classifier, x, y, cv=splitter, method="predict_proba")[:, 1]

__all__ = ["em_priors", "domain_probabilities"]
