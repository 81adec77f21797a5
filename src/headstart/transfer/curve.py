"""Learning curves: test accuracy against the number of labels, with and without transfer.

For each number of labels a class (4, 8, 16, ... and all) and each seed, the same labeled
items train two models, both tested on the whole test split:

- with transfer: the linear probe (:func:`headstart.learn.probe.fit_probe`) on the backbone's
  cached frozen features, so the curve costs one feature extraction in all;
- without: the from-scratch baseline of :mod:`headstart.transfer.baseline`.

Held-out data for choosing settings come out of the sampled items themselves (cross-validation,
or a stratified fifth for 1,000 items or more and for the CNN's early stopping), so a point on
the curve at n labels used exactly n labels. "Labels transfer saved" is how many fewer labels
the transfer model needs to reach the accuracy of the scratch model trained on all of them.
"""

from __future__ import annotations

import time
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
from headstart.transfer.baseline import image_scratch, text_scratch

ALL = "all"


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
    """Rows ``{"per_class", "labels", "seed", "transfer", "scratch"}`` (test accuracies) and their summary."""

    backbone: str
    rows: list[dict]
    scratch_method: str
    n_test: int
    seconds: float = 0.0
    summary: list[dict] = field(default_factory=list)
    stem: ClassVar[str] = "curve"

    def __post_init__(self) -> None:
        if not self.summary:
            self.summary = summarize(self.rows)

    def saved(self) -> dict:
        """Labels transfer saved, from the smallest point where transfer reaches scratch on all labels.

        That point is where the transfer model's mean accuracy reaches the scratch model's on all
        labels; ``labels_needed`` is None when it never does.
        """
        full = self.summary[-1]
        target = full["scratch_mean"]
        reached = next((s for s in self.summary if s["transfer_mean"] >= target), None)
        needed = None if reached is None else reached["labels"]
        return {"scratch_all_accuracy": target, "all_labels": full["labels"], "labels_needed": needed,
                "per_class_needed": None if reached is None else reached["per_class"],
                "labels_saved": None if needed is None else full["labels"] - needed}

    def sentence(self) -> str:
        """One sentence: how many labels transfer saved, or that it saved none."""
        s = self.saved()
        base = (f"the scratch model ({self.scratch_method}) trained on all {s['all_labels']:,} labels reaches "
                f"{s['scratch_all_accuracy']:.1%}")
        if s["labels_needed"] is None:
            return f"Without transfer {base}; the pretrained model does not reach it at any size tried: " \
                   "transfer saved no labels."
        share = s["labels_saved"] / s["all_labels"]
        return (f"Labels transfer saved: {s['labels_saved']:,} ({share:.0%}). The pretrained {self.backbone} "
                f"matches it with {s['labels_needed']:,} labels ({s['per_class_needed']} a class), where {base}.")

    def to_dict(self) -> dict:
        """Everything ``curve.json`` holds: the rows, their summary, the labels saved and the sentence."""
        return {"backbone": self.backbone, "scratch_method": self.scratch_method, "n_test": self.n_test,
                "seconds": self.seconds, "saved": self.saved(), "sentence": self.sentence(),
                "summary": self.summary, "rows": self.rows}

    def plot(self) -> bytes:
        """PNG of mean accuracy against labels a class (log scale), with and without transfer.

        Each curve has a band from the lowest to the highest seed; the scratch-on-all-labels level
        is dashed and the matching point circled.
        """
        fig = new_figure(7.5, 4.6)
        ax = fig.add_subplot()
        x = np.array([s["labels"] for s in self.summary], dtype=float)
        for key, label, color in (("transfer", f"with transfer ({self.backbone})", "#1f77b4"),
                                  ("scratch", f"from scratch ({self.scratch_method})", "#ff7f0e")):
            mean = np.array([s[f"{key}_mean"] for s in self.summary])
            ax.plot(x, mean, marker="o", color=color, label=label)
            ax.fill_between(x, [s[f"{key}_min"] for s in self.summary], [s[f"{key}_max"] for s in self.summary],
                            color=color, alpha=0.18, linewidth=0)
        saved = self.saved()
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
        ax.legend(loc="lower right", fontsize=9)
        return figure_png(fig)

    def save(self, folder: str | Path) -> Path:
        """Write ``curve.json``, ``curve.png`` and ``curve.html`` into ``folder``."""
        picture = self.plot()
        columns = ["a class", "labels", "seeds", "transfer mean", "transfer std", "scratch mean", "scratch std"]
        rows = [[s["per_class"], s["labels"], s["seeds"], s["transfer_mean"], s["transfer_std"], s["scratch_mean"],
                 s["scratch_std"]] for s in self.summary]
        return page.write_result(folder, self.stem, payload=self.to_dict(), picture=picture,
                                 title=f"headstart: learning curves, {self.backbone}", sentences=[self.sentence()],
                                 sections=[{"title": "Accuracy against labels", "png": picture,
                                            "text": [f"Test accuracy on {self.n_test} items."]},
                                           {"title": "Summary", "columns": columns, "rows": rows}])

    def table(self) -> str:
        """Mean ± std test accuracy with and without transfer at each size, as a plain-text table."""
        columns = ["a class", "labels", "transfer", "scratch"]
        rows = [[s["per_class"], s["labels"], f"{s['transfer_mean']:.4f} ± {s['transfer_std']:.4f}",
                 f"{s['scratch_mean']:.4f} ± {s['scratch_std']:.4f}"] for s in self.summary]
        return page.table_text(columns, rows)


def summarize(rows: list[dict]) -> list[dict]:
    """Per size (in order): seeds, labels (mean), and mean/std/min/max of both accuracies."""
    out = []
    for size in dict.fromkeys(r["per_class"] for r in rows):
        group = [r for r in rows if r["per_class"] == size]
        entry = {"per_class": size, "labels": int(round(np.mean([r["labels"] for r in group]))),
                 "seeds": len(group)}
        for key in ("transfer", "scratch"):
            values = np.array([r[key] for r in group])
            entry.update({f"{key}_mean": float(values.mean()), f"{key}_std": float(values.std()),
                          f"{key}_min": float(values.min()), f"{key}_max": float(values.max())})
        out.append(entry)
    return out


def learning_curve(train: Dataset, test: Dataset, backbone, classes: Sequence[str], *,
                   sizes: Sequence | None = None, seeds: int = 3, engine: str = "auto", cache_dir=None) -> Curve:
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

    Returns:
        The :class:`Curve`.

    Raises:
        HeadstartError: no test items, or sizes that cannot be drawn.
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
                         **_one_point(train, x, y, pick, test, test_x, test_y, len(classes), seed)})
            advance(1)
    method = "TF-IDF + logistic regression" if train.modality == "text" else "small CNN"
    return Curve(backbone.name, rows, method, len(test), seconds=time.perf_counter() - started)


def _one_point(train, x, y, pick, test, test_x, test_y, n_classes, seed) -> dict:
    fit, held = (pick[i] for i in inner_split(y[pick], seed, need_val=False))
    _, info = fit_probe(x[fit], y[fit], x[held], y[held], n_classes, seed=seed)
    head, _ = final_probe(x[fit], y[fit], x[held], y[held], n_classes, info["C"], seed=seed)
    transfer = float((head.logits(test_x).argmax(1) == test_y).mean())
    items = train.items
    if train.modality == "text":
        predict, _ = text_scratch([items[i] for i in fit], y[fit], [items[i] for i in held], y[held], n_classes,
                                  seed=seed)
    else:
        fit, held = (pick[i] for i in inner_split(y[pick], seed, need_val=True))
        predict, _ = image_scratch([items[i] for i in fit], y[fit], [items[i] for i in held], y[held], n_classes,
                                   seed=seed)
    scratch = float((predict(test.items).argmax(1) == test_y).mean())
    return {"transfer": transfer, "scratch": scratch}
