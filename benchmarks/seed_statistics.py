"""Figures over seeds: the spread of one measurement, and a paired comparison of two by seed.

Where two methods share each seed's randomness (the same start labels for every strategy of a
seed, in active_learning.py), the seed-to-seed spread is mostly shared too; the difference taken
seed by seed cancels it, so its mean and interval say more than two means side by side.
"""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95


def spread(values: list[float]) -> dict:
    """Mean, min, max and sample standard deviation (ddof=1; None for fewer than two values)."""
    values = np.asarray(values, dtype=float)
    if not len(values):
        return {"n": 0, "mean": None, "min": None, "max": None, "std": None}
    return {"n": int(len(values)), "mean": float(values.mean()), "min": float(values.min()),
            "max": float(values.max()), "std": float(values.std(ddof=1)) if len(values) > 1 else None}


def paired_difference(first: dict, second: dict, confidence: float = CONFIDENCE) -> dict:
    """``first[seed] - second[seed]`` over the seeds both measured (a value of None, say a run that
    never reached its target, leaves its seed out and is counted in ``left_out``): the mean, its
    Student-t interval at ``confidence`` (None for fewer than two seeds), and how many seeds the
    first was below, equal to and above the second."""
    from scipy import stats

    seeds = sorted(s for s in set(first) & set(second))
    kept = [s for s in seeds if first[s] is not None and second[s] is not None]
    differences = np.array([first[s] - second[s] for s in kept], dtype=float)
    out = {"n": len(kept), "left_out": len(seeds) - len(kept), "confidence": confidence,
           "mean": None, "low": None, "high": None,
           "below": int((differences < 0).sum()), "equal": int((differences == 0).sum()),
           "above": int((differences > 0).sum()), "by_seed": dict(zip(kept, differences.tolist()))}
    if len(kept) == 0:
        return out
    out["mean"] = float(differences.mean())
    if len(kept) > 1:
        half = stats.t.ppf(0.5 + confidence / 2, len(kept) - 1) * differences.std(ddof=1) / np.sqrt(len(kept))
        out["low"], out["high"] = out["mean"] - float(half), out["mean"] + float(half)
    return out
