"""The labels-to-accuracy benchmark's summary: mean and spread by method and budget, the issue's targets, the
stretch goal's distance, the tables and the plot (``label_budget.py`` runs the methods)."""

from __future__ import annotations

import numpy as np

try:
    import common
except ImportError:
    from benchmarks import common

from headstart.labeling.retrain import FINETUNE_EVERY

BUDGETS = (20, 50, 100, 200, 300, 500)
METHODS = ("headstart", "pool-fit", "random", "setfit", "small-text", "no-pool")
PEERS = ("random", "setfit", "small-text", "no-pool")
# Not run but read off two that are: the model a labeling project serves at a budget. Its probe retrains
# as labels grow, and every FINETUNE_EVERY labels it queues a fine-tune in the default mode with the pool
# (headstart.labeling.retrain), which is pool-fit's model on the same labels once a worker has run it.
SERVED = "served"
LABELS = {"headstart": "headstart loop", "pool-fit": "headstart labels + pool", "random": "random + probe",
          "setfit": "random + SetFit", "small-text": "small-text + probe", "no-pool": "headstart labels, no pool",
          SERVED: "headstart project's model (its probe; its fine-tune from 100 labels)"}
STRETCH = {"sst2": (0.85, 300), "fashion": (0.88, 200)}  # accuracy with at most this many labels
STRETCH_CPU_MINUTES = 10.0  # on two cores: CPU seconds / 2
TARGET_MARGIN = 0.03  # at 100 and 200 labels, over random + probe


def summarize(rows: list[dict]) -> list[dict]:
    """Per (method, budget), in ``METHODS`` then budget order: seeds, accuracy mean and std, CPU minutes."""
    out = []
    for method in METHODS:
        for budget in sorted({r["budget"] for r in rows if r["method"] == method}):
            ok = [r for r in rows if r["method"] == method and r["budget"] == budget and r["status"] == "ok"]
            if not ok:
                continue
            mean, std = common.mean_std(r["accuracy"] for r in ok)
            # no-pool rows from before the default mode was affordable here (minutes a fit) hold the probe's
            modes = {"fit_modes": sorted({r.get("fit_mode", "probe") for r in ok})} if method == "no-pool" else {}
            out.append({"method": method, "budget": budget, "seeds": len(ok), "accuracy_mean": mean,
                        "accuracy_std": std, "cpu_minutes_mean": common.mean_std(r["cpu_seconds"] for r in ok)[0] / 60,
                        **modes})
    return out


def with_served(summary: list[dict], every: int = FINETUNE_EVERY) -> list[dict]:
    """``summary`` and the :data:`SERVED` entries: at a budget that is a multiple of ``every``, pool-fit's
    (the fine-tune the project queued there), at the others the loop's probe (``headstart``)."""
    served = [{**s, "method": SERVED} for s in summary
              if s["method"] == ("pool-fit" if s["budget"] >= every and s["budget"] % every == 0 else "headstart")]
    return summary + served


def _value(summary: list[dict], method: str, budget: int, key: str = "accuracy_mean"):
    return next((s[key] for s in summary if s["method"] == method and s["budget"] == budget), None)


def _peer_value(summary: list[dict], peer: str, budget: int):
    """A peer's mean at ``budget`` (None: not measured). The no-pool peer is the default mode on the same
    labels; rows of it that hold the probe's score (from before that mode was affordable here) do not count."""
    if peer == "no-pool" and _value(summary, peer, budget, "fit_modes") not in (None, ["auto"]):
        return None
    return _value(summary, peer, budget)


def evaluate_targets(name: str, summary: list[dict], method: str = "headstart") -> list[dict]:
    """The issue's targets from a summary: at every budget from 50 on, ``method``'s mean (headstart's loop,
    or its labels with the pool) at least the best peer's (of those measured at that budget, named in the
    line); at 100 and 200 labels at least ``TARGET_MARGIN`` above random + probe."""
    targets = []
    mine = LABELS[method]
    for budget in sorted({s["budget"] for s in summary if s["budget"] >= 50}):
        peers = {p: value for p in PEERS if (value := _peer_value(summary, p, budget)) is not None}
        best = max(peers, key=peers.get) if peers else None
        targets.append(common.target(f"{name} {budget} labels: {mine} >= best peer ({LABELS.get(best, 'none')})",
                                     _value(summary, method, budget), ">=", peers.get(best)))
    for budget in (100, 200):
        random = _value(summary, "random", budget)
        targets.append(common.target(f"{name} {budget} labels: {mine} >= random + probe + {TARGET_MARGIN:.0%}",
                                     _value(summary, method, budget), ">=",
                                     None if random is None else random + TARGET_MARGIN))
    return targets


def every_target(name: str, summary: list[dict]) -> list[dict]:
    """The targets of the loop's probe, of pool-fit, and of the project's model (:data:`SERVED`)."""
    return [t for method in ("headstart", "pool-fit", SERVED) for t in evaluate_targets(name, summary, method)]


def stretch(name: str, summary: list[dict]) -> dict | None:
    """The stretch goal's distance: the best mean of headstart's loop or its labels with the pool at or below
    the goal's labels, the goal,
    and the CPU minutes on two cores (CPU seconds / 2) at that budget."""
    if name not in STRETCH:
        return None
    goal, most = STRETCH[name]
    rows = [s for s in summary if s["method"] in ("headstart", "pool-fit") and s["budget"] <= most]
    if not rows:
        return {"goal": goal, "labels_at_most": most, "best": None}
    best = max(rows, key=lambda s: s["accuracy_mean"])
    minutes = best["cpu_minutes_mean"] / 2
    return {"goal": goal, "labels_at_most": most, "best": best["accuracy_mean"], "at_labels": best["budget"],
            "method": best["method"],
            "points_short": max(0.0, goal - best["accuracy_mean"]) * 100, "two_core_minutes": minutes,
            "met": bool(best["accuracy_mean"] >= goal and minutes < STRETCH_CPU_MINUTES)}


def print_summary(name: str, summary: list[dict], quick: bool) -> None:
    methods = [m for m in (*METHODS, SERVED) if any(s["method"] == m for s in summary)]
    budgets = sorted({s["budget"] for s in summary})
    cell = lambda m, b, f: next((f(s) for s in summary if s["method"] == m and s["budget"] == b), "-")  # noqa: E731
    accuracy = lambda s: (f"{s['accuracy_mean']:.4f} ± {s['accuracy_std']:.4f} ({s['seeds']})"  # noqa: E731
                          + ("" if s.get("fit_modes", ["auto"]) == ["auto"] else f" {'+'.join(s['fit_modes'])}"))
    title = f"{name}: test accuracy, mean ± std (seeds)" + (" (QUICK: numbers mean nothing)" if quick else "")
    common.print_table([{"labels": b, **{LABELS[m]: cell(m, b, accuracy) for m in methods}} for b in budgets],
                       ["labels", *[LABELS[m] for m in methods]], title=title)
    common.print_table([{"labels": b, **{LABELS[m]: cell(m, b, lambda s: f"{s['cpu_minutes_mean']:.2f}")
                                         for m in methods}} for b in budgets],
                       ["labels", *[LABELS[m] for m in methods]], title=f"{name}: CPU minutes, mean over seeds")


def plot(name: str, summary: list[dict], path) -> None:
    """Accuracy against labels, one line a method with a band of one standard deviation, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for method in (*METHODS, SERVED):
        rows = sorted((s for s in summary if s["method"] == method), key=lambda s: s["budget"])
        if not rows:
            continue
        x = np.array([s["budget"] for s in rows])
        mean, std = np.array([s["accuracy_mean"] for s in rows]), np.array([s["accuracy_std"] for s in rows])
        axes.plot(x, mean, marker="o", label=LABELS[method], linestyle="--" if method == SERVED else "-")
        axes.fill_between(x, mean - std, mean + std, alpha=0.15)
    axes.set_xscale("log")
    axes.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
    axes.set_xticks([], minor=True)  # the log axis's own minor labels (3x10^1, ...) crowd the budgets'
    axes.set_xlabel("labels")
    axes.set_ylabel("test accuracy")
    axes.set_title(f"{name}: accuracy against labels (mean ± std over seeds)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
