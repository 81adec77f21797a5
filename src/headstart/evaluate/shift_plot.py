"""The shift page's picture: both data sets on a 2-D map, and the class priors of each.

Drawn from the summary dict of a shift measurement (``headstart shift --json`` holds the same), so
that ``headstart shift``, a model's report and the labeling project draw the same picture.
"""

from __future__ import annotations

import numpy as np

from headstart.output import figure_png, new_figure

SOURCE_COLOR, TARGET_COLOR = "#1f77b4", "#d62728"


def shift_png(summary: dict) -> bytes:
    """PNG: the first two principal components of both sides, and the priors as bars.

    Args:
        summary: a shift summary with ``map`` (``source`` and ``target``: lists of [x, y]),
            ``explained`` (two variance shares), ``auc``, and optionally ``priors`` (class ->
            ``{"source", "target"}``, and ``"labeled"`` where the target's labels are known), and
            ``sides``, the two sides' names (default source, target).
    """
    priors = summary.get("priors") or {}
    fig = new_figure(11.0 if priors else 6.5, 4.6)
    axes = fig.subplots(1, 2 if priors else 1, squeeze=False)[0]
    _draw_map(axes[0], summary)
    if priors:
        _draw_priors(axes[1], priors, summary.get("sides") or ("source", "target"))
    fig.tight_layout()
    return figure_png(fig)


def _draw_map(ax, summary: dict) -> None:
    points = summary.get("map") or {}
    names = summary.get("sides") or ("source", "target")
    groups = [(name, points.get(side), color)
              for side, name, color in zip(("source", "target"), names, (SOURCE_COLOR, TARGET_COLOR))]
    draw_map(ax, groups, summary.get("explained"),
             f"Both sides on their first two components (domain AUC {summary.get('auc', float('nan')):.2f})")


def draw_map(ax, groups, explained, title: str) -> None:
    """Scatter groups of 2-D points on principal-component axes, one colour and legend entry a group.

    Args:
        ax: the matplotlib axes.
        groups: (name, points as a list of [x, y] or None, colour) for each group.
        explained: the share of variance of the two components (None: unknown).
        title: the axes' title.
    """
    for name, xy, color in groups:
        xy = np.asarray(xy if xy is not None else np.zeros((0, 2)), dtype=float).reshape(-1, 2)
        ax.scatter(xy[:, 0], xy[:, 1], s=9, alpha=0.45, color=color, edgecolors="none",
                   label=f"{name} ({len(xy)})")
    explained = explained or (0.0, 0.0)
    ax.set(xlabel=f"first principal component ({explained[0]:.0%} of variance)",
           ylabel=f"second ({explained[1]:.0%})", title=title)
    ax.legend(loc="best", fontsize=9, markerscale=2)
    ax.grid(True, alpha=0.3)


def _draw_priors(ax, priors: dict, names) -> None:
    classes = list(priors)
    x = np.arange(len(classes))
    bars = [("source", f"{names[0]}, labels", SOURCE_COLOR), ("target", f"{names[1]}, estimated (EM)", TARGET_COLOR)]
    if any(v.get("labeled") is not None for v in priors.values()):
        bars.append(("labeled", f"{names[1]}, labels", "#7f7f7f"))
    width = 0.8 / len(bars)
    for i, (key, label, color) in enumerate(bars):
        values = [priors[c].get(key) or 0.0 for c in classes]
        ax.bar(x + (i - (len(bars) - 1) / 2) * width, values, width, color=color, label=label)
    ax.set_xticks(x, [c[:14] for c in classes], rotation=30 if len(classes) > 4 else 0, ha="right"
                  if len(classes) > 4 else "center")
    ax.set(ylabel="share of items", title="Class priors")
    ax.legend(fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
