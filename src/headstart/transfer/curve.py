"""Learning curves: test accuracy against the number of labels, with and without transfer.

For each number of labels a class (4, 8, 16, ... and all) and each seed, the same labeled
items train two models, both tested on the whole test split:

- with transfer: the linear probe (:func:`headstart.learn.probe.fit_probe`) on the backbone's
  cached frozen features, so the curve costs one feature extraction in all;
- without: the strong from-scratch baseline that ``fit`` checks against
  (:func:`headstart.transfer.baseline.choose_scratch`): the best on the point's own validation
  draw of the modality's cheap candidates (text: TF-IDF + logistic regression; images: pixel
  logistic regression, an MLP for tiny images, a small CNN), within :data:`SCRATCH_BUDGET_S`
  seconds a point. Which candidate won at each point is kept and shown.

Held-out data for choosing settings come out of the sampled items themselves (cross-validation,
or a stratified fifth for 1,000 items or more and wherever candidates are compared), so a point
on the curve at n labels used exactly n labels.

A curve should not fall as labels grow. When one does beyond noise (see :func:`falling`), it
is flagged in the sentence, the JSON and the plot: a falling scratch curve means the baseline
failed to use its labels, so "labels transfer saved" (how many fewer labels the transfer model
needs to reach the accuracy of the scratch model trained on all of them) is not computed
against it: the figure would measure the baseline's failure, not what transfer is worth.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
from matplotlib.ticker import ScalarFormatter

from headstart.data.dataset import Dataset
from headstart.errors import HeadstartError
from headstart.features.extract import cached_features
from headstart.learn.probe import final_probe, fit_probe
from headstart.output import figure_png, new_figure
from headstart.progress import progress_bar
from headstart.transfer import page
from headstart.transfer.baseline import IMAGE_CANDIDATES, TEXT_CANDIDATES, choose_scratch

ALL = "all"
SCRATCH_BUDGET_S = 60.0  # seconds for the scratch candidates at each point; the cheapest always runs
NOISE_SE = 2.0  # a fall counts when it exceeds this many standard errors of a difference of test accuracies
TEXT_SCRATCH = "TF-IDF + logistic regression"
IMAGE_SCRATCH = "best on validation of pixel LR, MLP and small CNN"


def default_sizes(smallest_class: int) -> list:
    """4, 8, 16, ... while below the smallest class's train count, then ``"all"``."""
    sizes, n = [], 4
    while n < smallest_class:
        sizes.append(n)
        n *= 2
    return sizes + [ALL]


def sample_per_class(labels: np.ndarray, n: int | str, seed: int) -> np.ndarray:
    """Positions of ``n`` items a class (every item for ``"all"`` or a class with fewer), sorted."""
    if n == ALL:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), size=min(int(n), int((labels == c).sum())), replace=False)
             for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def inner_split(labels: np.ndarray, seed: int, *, need_val: bool) -> tuple[np.ndarray, np.ndarray]:
    """(fit, held-out) positions of a curve point's labeled items.

    A stratified fifth is held out when ``need_val`` (or for 1,000 items or more) and every class
    has at least 5 items; otherwise everything is fitted on and nothing held out.
    """
    counts = np.bincount(labels)[np.unique(labels)]
    if not (need_val or len(labels) >= 1000) or counts.min() < 5:
        return np.arange(len(labels)), np.arange(0)
    from sklearn.model_selection import train_test_split

    fit, held = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=seed)
    return np.sort(fit), np.sort(held)


def check_sizes(sizes: Sequence | None) -> list | None:
    """``sizes`` as a list, or None for the default; raises for anything but ints >= 2 and ``"all"``."""
    if sizes is None:
        return None
    sizes = list(sizes)
    bad = [s for s in sizes if s != ALL and (not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 2)]
    if bad or not sizes:
        raise HeadstartError(f"cannot use sizes {bad or sizes}", where="--sizes",
                             fix="give whole numbers of labels a class, at least 2, or 'all', e.g. 4,8,16,all")
    return sizes


@dataclass
class Curve:
    """Rows ``{"per_class", "labels", "seed", "transfer", "scratch", ...}`` (test accuracies) and their summary.

    A row may also say which scratch candidate won (``scratch_model``) and what each scored on the
    point's validation draw (``scratch_candidates``); ``falls`` holds :func:`falling` of each side.
    """

    backbone: str
    rows: list[dict]
    scratch_method: str
    n_test: int
    seconds: float = 0.0
    summary: list[dict] = field(default_factory=list)
    scratch_budget_s: float | None = None
    falls: dict = field(default_factory=dict)
    stem: ClassVar[str] = "curve"

    def __post_init__(self) -> None:
        if not self.summary:
            self.summary = summarize(self.rows)
        if not self.falls:
            self.falls = {key: falling(self.summary, key, self.n_test) for key in ("transfer", "scratch")}

    def saved(self) -> dict:
        """Labels transfer saved, from the smallest point where transfer reaches scratch on all labels.

        That point is where the transfer model's mean accuracy reaches the scratch model's on all
        labels; ``labels_needed`` is None when it never does. Against a scratch curve that falls
        beyond noise nothing is computed (all None, and ``not_computed`` says why).
        """
        full = self.summary[-1]
        target = full["scratch_mean"]
        if self.falls.get("scratch"):
            return {"scratch_all_accuracy": target, "all_labels": full["labels"], "labels_needed": None,
                    "per_class_needed": None, "labels_saved": None,
                    "not_computed": "the scratch curve falls as labels grow, so its accuracy on all labels is "
                                    "not what training from scratch can reach"}
        reached = next((s for s in self.summary if s["transfer_mean"] >= target), None)
        needed = None if reached is None else reached["labels"]
        return {"scratch_all_accuracy": target, "all_labels": full["labels"], "labels_needed": needed,
                "per_class_needed": None if reached is None else reached["per_class"],
                "labels_saved": None if needed is None else full["labels"] - needed}

    def sentence(self) -> str:
        """One sentence: how many labels transfer saved (or why that is not computed), and any falling curve."""
        s = self.saved()
        full = self.summary[-1]
        note = ""
        if self.falls.get("transfer"):
            note = (f" Note: the transfer curve falls as labels grow ({_fall_text(self.falls['transfer'])}), "
                    "more than the seeds' spread and test noise.")
        if "not_computed" in s:
            return (f"Labels transfer saved: not computed, because the from-scratch curve ({self.scratch_method}) "
                    f"falls as labels grow ({_fall_text(self.falls['scratch'])}), more than the seeds' spread and "
                    "test noise: its accuracy on all labels is not what training from scratch can reach. With all "
                    f"{full['labels']:,} labels the pretrained {self.backbone} reaches {full['transfer_mean']:.1%} "
                    f"and the scratch model {full['scratch_mean']:.1%}.{note}")
        base = (f"the scratch model ({self.scratch_method}) trained on all {s['all_labels']:,} labels reaches "
                f"{s['scratch_all_accuracy']:.1%}")
        if s["labels_needed"] is None:
            return f"Without transfer {base}; the pretrained model does not reach it at any size tried: " \
                   f"transfer saved no labels.{note}"
        share = s["labels_saved"] / s["all_labels"]
        return (f"Labels transfer saved: {s['labels_saved']:,} ({share:.0%}). The pretrained {self.backbone} "
                f"matches it with {s['labels_needed']:,} labels ({s['per_class_needed']} a class), where {base}."
                f"{note}")

    def to_dict(self) -> dict:
        """Everything ``curve.json`` holds: the rows, their summary, falls, the labels saved and the sentence."""
        return {"backbone": self.backbone, "scratch_method": self.scratch_method, "n_test": self.n_test,
                "seconds": self.seconds, "scratch_budget_s": self.scratch_budget_s, "falls": self.falls,
                "saved": self.saved(), "sentence": self.sentence(), "summary": self.summary, "rows": self.rows}

    def figure(self):
        """The plot's matplotlib figure: mean accuracy against labels a class (log scale), both sides.

        Each curve has a band from the lowest to the highest seed; the scratch-on-all-labels level
        is dashed and the matching point circled; a point where a curve fell beyond noise is marked
        with a red triangle. The legend sits right of the axes, where it cannot cover a curve.
        """
        fig = new_figure(8.5, 4.6)
        ax = fig.add_subplot()
        x = np.array([s["labels"] for s in self.summary], dtype=float)
        for key, label, color in (("transfer", f"with transfer ({self.backbone})", "#1f77b4"),
                                  ("scratch", f"from scratch ({self.scratch_method})", "#ff7f0e")):
            mean = np.array([s[f"{key}_mean"] for s in self.summary])
            ax.plot(x, mean, marker="o", color=color, label=_wrap(label))
            ax.fill_between(x, [s[f"{key}_min"] for s in self.summary], [s[f"{key}_max"] for s in self.summary],
                            color=color, alpha=0.18, linewidth=0)
        falls = self.falls.get("transfer", []) + self.falls.get("scratch", [])
        if falls:
            ax.plot([f["labels"] for f in falls], [f["to"] for f in falls], linestyle="none", marker="v",
                    markersize=11, color="#d62728", label="falls beyond noise")
        saved = self.saved()
        if "not_computed" not in saved:
            ax.axhline(saved["scratch_all_accuracy"], color="#ff7f0e", linestyle="--", linewidth=1,
                       label="scratch on all labels")
        if saved["labels_needed"] is not None:
            ax.plot([saved["labels_needed"]], [saved["scratch_all_accuracy"]], marker="o", markersize=14,
                    markerfacecolor="none", color="#d62728")
        if x.max() / x.min() > 8:
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set(xlabel="labeled training items", ylabel="test accuracy", title="Learning curves (band: min to max "
               "over seeds)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=9)
        return fig

    def plot(self) -> bytes:
        """PNG of :meth:`figure`."""
        return figure_png(self.figure())

    def save(self, folder: str | Path) -> Path:
        """Write ``curve.json``, ``curve.png`` and ``curve.html`` into ``folder``."""
        picture = self.plot()
        columns = ["a class", "labels", "seeds", "transfer mean", "transfer std", "scratch mean", "scratch std",
                   "scratch model kept"]
        rows = [[s["per_class"], s["labels"], s["seeds"], s["transfer_mean"], s["transfer_std"], s["scratch_mean"],
                 s["scratch_std"], winners(s)] for s in self.summary]
        return page.write_result(folder, self.stem, payload=self.to_dict(), picture=picture,
                                 title=f"headstart: learning curves, {self.backbone}", sentences=[self.sentence()],
                                 sections=[{"title": "Accuracy against labels", "png": picture,
                                            "text": [f"Test accuracy on {self.n_test} items."]},
                                           {"title": "Summary", "columns": columns, "rows": rows},
                                           self._scratch_section()])

    def _scratch_section(self) -> dict:
        names = list(dict.fromkeys(c["name"] for r in self.rows for c in r.get("scratch_candidates", [])))
        budget = ("no time limit" if self.scratch_budget_s is None
                  else f"{self.scratch_budget_s:.0f} s a point (the cheapest always runs)")
        text = [f"At each point the scratch side is {self.scratch_method}: the candidates are fitted on the "
                f"point's labels less a validation fifth, cheapest first within {budget}, and the best on that "
                "validation draw is kept (ties go to the cheaper; with no validation items, the last fitted)."]
        rows = []
        for s in self.summary:
            group = [r for r in self.rows if r["per_class"] == s["per_class"]]
            cells = []
            for name in names:
                tried = [c for r in group for c in r.get("scratch_candidates", []) if c["name"] == name]
                scores = [c["val_accuracy"] for c in tried if c.get("val_accuracy") is not None]
                skipped = sum("skipped" in c for c in tried)
                cells.append((f"{np.mean(scores):.1%}" if scores else "\u2014") + (f" ({skipped} skipped)"
                                                                                    if skipped else ""))
            seconds = [r["scratch_seconds"] for r in group if "scratch_seconds" in r]
            rows.append([s["per_class"], s["labels"], winners(s), *cells,
                         float(np.mean(seconds)) if seconds else None])
        return {"title": "The scratch side", "text": text,
                "columns": ["a class", "labels", "kept", *[f"{n} validation" for n in names], "seconds"],
                "rows": rows}

    def table(self) -> str:
        """Mean ± std test accuracy with and without transfer at each size, as a plain-text table."""
        columns = ["a class", "labels", "transfer", "scratch", "scratch model"]
        rows = [[s["per_class"], s["labels"], f"{s['transfer_mean']:.4f} ± {s['transfer_std']:.4f}",
                 f"{s['scratch_mean']:.4f} ± {s['scratch_std']:.4f}", winners(s)] for s in self.summary]
        return page.table_text(columns, rows)


def winners(entry: dict) -> str:
    """Which scratch candidate won at a size, e.g. ``cnn ×2, pixel-lr`` (a dash when unknown)."""
    counts = entry.get("scratch_models") or {}
    return ", ".join(name + (f" \u00d7{n}" if n > 1 else "") for name, n in counts.items()) or "\u2014"


def falling(summary: list[dict], key: str, n_test: int) -> list[dict]:
    """The points where a curve (``key``: transfer or scratch) falls below its best earlier point beyond noise.

    Noise is the larger of the seeds' spread (max - min) at either point and :data:`NOISE_SE`
    standard errors of the difference of two accuracies on ``n_test`` items, sqrt(2 p (1 - p) / n)
    at their mean p (treating the two as independent overstates it for the same test items, so a
    flag is not a fluke of the test draw). Each entry: ``labels``, ``per_class``, ``to`` (its mean),
    ``from_labels``, ``from_per_class``, ``from`` (the earlier best mean), ``drop`` and ``noise``.
    """
    out = []
    for i in range(1, len(summary)):
        peak, point = max(summary[:i], key=lambda s: s[f"{key}_mean"]), summary[i]
        high, low = peak[f"{key}_mean"], point[f"{key}_mean"]
        p = (high + low) / 2
        noise = max(peak[f"{key}_max"] - peak[f"{key}_min"], point[f"{key}_max"] - point[f"{key}_min"],
                    NOISE_SE * math.sqrt(2 * p * (1 - p) / max(n_test, 1)))
        if high - low > noise:
            out.append({"labels": point["labels"], "per_class": point["per_class"], "to": low,
                        "from_labels": peak["labels"], "from_per_class": peak["per_class"], "from": high,
                        "drop": high - low, "noise": noise})
    return out


def _fall_text(falls: list[dict]) -> str:
    worst = max(falls, key=lambda f: f["drop"])
    return f"{worst['from']:.1%} at {worst['from_labels']:,} labels, {worst['to']:.1%} at {worst['labels']:,}"


def _wrap(label: str, width: int = 34) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(label, width))


def summarize(rows: list[dict]) -> list[dict]:
    """Per size (in order): seeds, labels (mean), mean/std/min/max of both accuracies, scratch winners.

    ``scratch_models`` counts the rows' ``scratch_model`` (which candidate won), most frequent first.
    """
    out = []
    for size in dict.fromkeys(r["per_class"] for r in rows):
        group = [r for r in rows if r["per_class"] == size]
        entry = {"per_class": size, "labels": int(round(np.mean([r["labels"] for r in group]))),
                 "seeds": len(group)}
        for key in ("transfer", "scratch"):
            values = np.array([r[key] for r in group])
            entry.update({f"{key}_mean": float(values.mean()), f"{key}_std": float(values.std()),
                          f"{key}_min": float(values.min()), f"{key}_max": float(values.max())})
        entry["scratch_models"] = dict(Counter(r["scratch_model"] for r in group if r.get("scratch_model"))
                                       .most_common())
        out.append(entry)
    return out


def learning_curve(train: Dataset, test: Dataset, backbone, classes: Sequence[str], *,
                   sizes: Sequence | None = None, seeds: int = 3, engine: str = "auto", cache_dir=None,
                   scratch_budget_s: float | None = SCRATCH_BUDGET_S) -> Curve:
    """Accuracy on ``test`` against labels a class drawn from ``train``, with and without transfer.

    Args:
        train: the labeled pool that labels are drawn from.
        test: the labeled test items every point is scored on.
        backbone: a :class:`~headstart.backbones.Backbone` (its features are cached).
        classes: label names, in the models' output order.
        sizes: labels a class, ints and ``"all"`` (default: :func:`default_sizes`).
        seeds: draws a size (``"all"`` is drawn once: every seed would give the same items).
        engine: where the frozen forward passes run: ``auto``, ``onnx`` or ``torch``.
        cache_dir: the feature cache's folder (None: the default one).
        scratch_budget_s: seconds for the scratch candidates at each point (None: no limit).

    Returns:
        The :class:`Curve`.

    Raises:
        HeadstartError: no test items, sizes that cannot be drawn, or a point where no scratch
            candidate could be fitted.
    """
    started = time.perf_counter()
    y, test_y = train.label_ids(list(classes)), test.label_ids(list(classes))
    smallest = int(np.bincount(y, minlength=len(classes)).min())
    sizes = check_sizes(sizes) or default_sizes(smallest)
    if len(test) == 0:
        raise HeadstartError("there is no test split to draw learning curves on", where=train.source,
                             fix="give --test FILE, or a test share in --split")
    x = cached_features(backbone, train.items, train.hashes, engine=engine, cache_dir=cache_dir)
    test_x = cached_features(backbone, test.items, test.hashes, engine=engine, cache_dir=cache_dir)
    runs = [(size, seed) for size in sizes for seed in range(1 if size == ALL else seeds)]
    rows = []
    with progress_bar("learning curves", len(runs)) as advance:
        for size, seed in runs:
            pick = sample_per_class(y, size, seed)
            rows.append({"per_class": size, "labels": int(len(pick)), "seed": seed,
                         **_one_point(train, x, y, pick, test, test_x, test_y, list(classes), seed,
                                      scratch_budget_s)})
            advance(1)
    method = TEXT_SCRATCH if train.modality == "text" else IMAGE_SCRATCH
    return Curve(backbone.name, rows, method, len(test), seconds=time.perf_counter() - started,
                 scratch_budget_s=scratch_budget_s)


def _one_point(train, x, y, pick, test, test_x, test_y, classes, seed, budget_s) -> dict:
    fit, held = (pick[i] for i in inner_split(y[pick], seed, need_val=False))
    _, info = fit_probe(x[fit], y[fit], x[held], y[held], len(classes), seed=seed)
    head, _ = final_probe(x[fit], y[fit], x[held], y[held], len(classes), info["C"], seed=seed)
    transfer = float((head.logits(test_x).argmax(1) == test_y).mean())
    # Candidates are compared on a validation fifth; a single candidate chooses its settings itself.
    several = len(TEXT_CANDIDATES if train.modality == "text" else IMAGE_CANDIDATES) > 1
    fit, held = (pick[i] for i in inner_split(y[pick], seed, need_val=several))
    selection = choose_scratch(train.subset(fit), train.subset(held), classes, budget_s=budget_s, seed=seed)
    if selection.best is None:
        why = "; ".join(f"{row['name']}: {row['skipped']}" for row in selection.rows)
        raise HeadstartError(f"no scratch model could be fitted on {len(pick)} labels (seed {seed}): {why}",
                             where=train.source, fix="draw larger sizes with --sizes")
    scratch = float((selection.best.predictor.predict_proba(test.items).argmax(1) == test_y).mean())
    return {"transfer": transfer, "scratch": scratch, "scratch_model": selection.best.name,
            "scratch_candidates": selection.rows, "scratch_seconds": selection.seconds}
