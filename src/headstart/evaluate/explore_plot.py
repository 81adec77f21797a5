"""The pool map's picture: the items on a 2-D map coloured by cluster, and the silhouette of each k.

The map is the first two principal components; the right panel shows the silhouette of each
number of clusters tried.

Drawn from the summary dict of ``headstart explore`` (``explore.json`` holds it), with the map
drawing of :mod:`headstart.evaluate.shift_plot`, so that the command and the labeling project draw
the same picture.
"""

from __future__ import annotations

import numpy as np

from headstart.evaluate.shift_plot import draw_map
from headstart.output import figure_png, new_figure


def explore_png(summary: dict) -> bytes:
    """PNG: the map coloured by cluster, and the mean silhouette against k (the chosen k marked).

    Args:
        summary: an explore summary with ``map`` (``points``: [x, y] a mapped item, ``cluster``:
            each one's cluster, from 1), ``explained``, ``k`` and ``silhouettes`` (k as text -> mean silhouette).
    """
    from matplotlib import colormaps

    scores = {int(k): v for k, v in (summary.get("silhouettes") or {}).items()}
    fig = new_figure(11.0 if scores else 6.5, 4.6)
    axes = fig.subplots(1, 2 if scores else 1, squeeze=False)[0]
    points = np.asarray(summary["map"]["points"], dtype=float).reshape(-1, 2)
    cluster = np.asarray(summary["map"]["cluster"], dtype=int)
    palette = colormaps["tab10" if summary["k"] <= 10 else "tab20"]
    groups = [(f"cluster {c + 1}", points[cluster == c + 1], palette(c % palette.N)) for c in range(summary["k"])]
    draw_map(axes[0], groups, summary.get("explained"), f"The pool on its first two components ({summary['k']} "
                                                         "clusters)")
    if scores:
        ks = sorted(scores)
        axes[1].plot(ks, [scores[k] for k in ks], marker="o", color="#1f77b4")
        axes[1].axvline(summary["k"], color="#d62728", linestyle="--", label=f"chosen: k = {summary['k']}")
        weak = summary.get("weak_below", 0.25)
        axes[1].axhline(weak, color="#7f7f7f", linestyle=":", label=f"{weak}: below, no substantial groups")
        # from 0 to above the line, so that a flat curve of tiny silhouettes looks flat rather than zoomed-in noise
        axes[1].set_ylim(min(0.0, *scores.values()) - 0.02, max(weak, *scores.values()) + 0.05)
        axes[1].set(xlabel="clusters (k)", ylabel="mean silhouette", title="How well each k separates the pool")
        axes[1].legend(fontsize=9)
        axes[1].grid(True, alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)
