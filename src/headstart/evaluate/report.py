"""A self-contained HTML report for one evaluated run.

Plots are drawn on :func:`headstart.output.new_figure` (matplotlib's Agg canvas, no pyplot)
and inlined as base64 PNGs: the file opens offline. The ``plot_*`` functions return PNG
bytes so other reports can reuse them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from headstart.evaluate.diagnostics import (POOR_ECE, TestPredictions, mistakes, plot_precision_recall,
                                           plot_reliability)
from headstart.output import figure_png, new_figure, png_base64, write_text

__all__ = ["write_report", "plot_confusion", "plot_history", "plot_per_class"]

_TEMPLATES = Path(__file__).parent / "templates"
_HISTORY_ORDER = ("epoch", "stage", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr", "seconds")


def _label(text, max_len: int = 28) -> str:
    """A string safe to draw: no mathtext (``$`` is escaped) and not too long."""
    text = str(text)
    if len(text) > max_len:
        text = text[: max_len - 1] + "\u2026"
    return text.replace("$", r"\$")


def _xticks(ax, labels: list[str], rotate: bool, **kwargs) -> None:
    ax.set_xticks(range(len(labels)), labels=labels, rotation=40 if rotate else 0,
                  ha="right" if rotate else "center", rotation_mode="anchor", **kwargs)


def _number(value) -> float:
    """``value`` as a float, or NaN when it is missing or not a number."""
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def plot_confusion(matrix, classes: Sequence[str]) -> bytes:
    """Confusion matrix (rows = true, columns = predicted) with annotated counts.

    Cells are shaded by their share of the true class (row-normalized), so small
    classes stay visible next to large ones; the numbers are raw counts.
    """
    cm = np.asarray(matrix, dtype=np.int64)
    k = len(classes)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix has shape {cm.shape}, expected ({k}, {k})")
    side = float(np.clip(0.5 * k + 2.5, 4.5, 13.0))
    fig = new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")

    fontsize = 12 if k <= 6 else 10 if k <= 12 else 8
    for (i, j), count in np.ndenumerate(cm):  # zeros in grey so the errors stand out
        color = "#b0b0b0" if count == 0 else "white" if share[i, j] > 0.55 else "#1a1a1a"
        ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=fontsize)

    names = [_label(c) for c in classes]
    _xticks(ax, names, rotate=k > 6 or max(map(len, names), default=0) > 8)
    ax.set_yticks(range(k), labels=names)
    ax.set(xlabel="Predicted class", ylabel="True class", title="Confusion matrix (counts)")
    ax.set_xticks(np.arange(-0.5, k, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, k, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="minor", length=0)
    return figure_png(fig)


def _epochs(rows: Sequence[Mapping]) -> np.ndarray:
    values = np.array([_number(r.get("epoch")) for r in rows])
    if len(values) and np.all(np.isfinite(values)) and np.all(np.diff(values) > 0):
        return values
    return np.arange(1, len(rows) + 1, dtype=float)  # missing or restarting per stage


def _mark_stages(fig: Figure, axes, x: np.ndarray, stages: list) -> None:
    """Mark the fine-tuning stages on the training curves.

    Dashed lines where the stage changes, light shading on every other stage, and the stage names
    in a band above the top panel (stacked when they would overlap).
    """
    starts = [0] + [i for i in range(1, len(stages)) if stages[i] != stages[i - 1]]
    if all(s is None for s in stages):
        return
    left, right = axes[0].get_xlim()
    edges = [left] + [(x[i - 1] + x[i]) / 2 for i in starts[1:]] + [right]
    for position in edges[1:-1]:
        for ax in axes:
            ax.axvline(position, color="#555555", linestyle="--", linewidth=1)
    for n in range(1, len(starts), 2):
        for ax in axes:
            ax.axvspan(edges[n], edges[n + 1], color="#000000", alpha=0.04, linewidth=0)
    for ax in axes:
        ax.set_xlim(left, right)
    transform = blended_transform_factory(axes[0].transData, axes[0].transAxes)
    renderer = fig.canvas.get_renderer()  # text extents, to stack labels that would overlap
    inverse = axes[0].transAxes.inverted()
    row_ends: list[float] = []
    for n, i in enumerate(starts):
        if stages[i] is None:
            continue
        start = inverse.transform(axes[0].transData.transform((edges[n], 0)))[0]
        text = axes[0].text(edges[n], 1.02, " " + _label(stages[i], 24), transform=transform,
                            ha="left", va="bottom", fontsize=9, color="#333333")
        box = text.get_window_extent(renderer=renderer)
        width = inverse.transform((box.x1, 0))[0] - inverse.transform((box.x0, 0))[0]
        row = next((r for r, end in enumerate(row_ends) if start >= end), len(row_ends))
        if row == len(row_ends):
            row_ends.append(0.0)
        row_ends[row] = start + width
        text.set_y(1.02 + 0.09 * row)


def plot_history(history: Iterable[Mapping]) -> bytes | None:
    """Loss and validation accuracy per epoch, with stage changes and the kept epoch marked.

    Returns ``None`` when there is nothing to plot (no rows, or no loss or
    accuracy values in any row).
    """
    rows = [r for r in history if isinstance(r, Mapping)]
    if not rows:
        return None
    x = _epochs(rows)
    series = {key: np.array([_number(r.get(key)) for r in rows])
              for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy")}
    present = {key for key, values in series.items() if np.isfinite(values).any()}
    panels = [keys for keys in (("train_loss", "val_loss"), ("train_accuracy", "val_accuracy"))
              if present.intersection(keys)]
    if not panels:
        return None

    fig = new_figure(10.0, 3.3 * len(panels) + 0.4)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    colors = {"train": "#1f77b4", "val": "#ff7f0e"}
    marker = "o" if len(rows) <= 40 else None
    for ax, keys in zip(axes, panels):
        for key in (key for key in keys if key in present):
            ok = np.isfinite(series[key])
            ax.plot(x[ok], series[key][ok], marker=marker, markersize=4, linewidth=1.6,
                    label=key.replace("_", " "), color=colors[key.split("_")[0]])
        kept = [i for i, row in enumerate(rows) if row.get("kept")]
        if kept and "val_accuracy" in keys and "val_accuracy" in present:  # the epoch whose weights were kept
            ax.plot(x[kept], series["val_accuracy"][kept], linestyle="none", marker="*", markersize=13,
                    color="#2ca02c", label="kept")
        ax.set_ylabel(keys[0].split("_")[1])
        if keys[0].endswith("accuracy"):
            low, high = ax.get_ylim()
            ax.set_ylim(max(low, 0.0), min(high, 1.02))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=9)
        if len(rows) == 1:  # a probe: one point, so print its value next to it
            for key in (key for key in keys if key in present):
                ax.annotate(f"{series[key][0]:.3f}", (x[0], series[key][0]), xytext=(6, 4),
                            textcoords="offset points", fontsize=9)
    axes[-1].set_xlabel("epoch")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(x) == 1:
        axes[-1].set_xlim(x[0] - 1, x[0] + 1)
    _mark_stages(fig, axes, x, [r.get("stage") for r in rows])
    return figure_png(fig)


def plot_per_class(per_class: Mapping[str, Mapping], classes: Sequence[str] | None = None) -> bytes:
    """Grouped bars of precision, recall and F1 for each class (support under the name)."""
    classes = list(per_class) if classes is None else list(classes)
    k = len(classes)
    width = float(np.clip(0.65 * k + 2.5, 6.0, 16.0))
    fig = new_figure(width, 4.2)
    ax = fig.add_subplot()
    bar = 0.26
    for offset, name, label, color in ((-bar, "precision", "precision", "#4c72b0"),
                                       (0.0, "recall", "recall", "#dd8452"), (bar, "f1", "F1", "#55a868")):
        values = np.nan_to_num([_number(per_class[c].get(name)) for c in classes])
        ax.bar(np.arange(k) + offset, values, bar, label=label, color=color)
    support = [per_class[c].get("support") for c in classes]
    labels = [_label(c) + ("" if n is None else f"\n(n={n})") for c, n in zip(classes, support)]
    rotate = k > 8 or max((len(_label(c)) for c in classes), default=0) > 10
    _xticks(ax, labels, rotate, fontsize=9 if k <= 12 else 8)
    ax.set(ylim=(0, 1.0), xlim=(-0.6, k - 0.4), ylabel="score")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return figure_png(fig)


def _format(value) -> str:
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _flatten(config: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(_flatten(value, prefix=name + "."))
        else:
            rows.append((name, _format(value)))
    return rows


def _history_table(rows: Sequence[Mapping]) -> tuple[list[str], list[list[str]]]:
    keys = [k for k in _HISTORY_ORDER if any(k in r for r in rows)]
    keys += sorted({str(k) for r in rows for k in r} - set(keys))
    def cell(row, key):
        return "" if key not in row else f"{row[key]:.4g}" if isinstance(row[key], float) else _format(row[key])

    return keys, [[cell(r, k) for k in keys] for r in rows]


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(_TEMPLATES)), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def write_report(path, **report) -> Path:
    """Write one self-contained HTML report (:func:`render_report`'s arguments) to ``path`` atomically; return it."""
    return write_text(Path(path), render_report(**report))


def render_report(*, title: str, metrics: Mapping, history: Sequence[Mapping],
                  config: Mapping, notes: Iterable[str] = (), links: Mapping[str, str] | None = None,
                  decision: Mapping | None = None, test: TestPredictions | None = None,
                  calibration: Mapping | None = None) -> str:
    """One self-contained HTML report, as text.

    ``metrics`` is the dict from :func:`classification_metrics` for the test split,
    ``history`` a list of per-epoch dicts (may be empty), ``config`` the run's
    settings, ``notes`` plain sentences (warnings) shown at the top, ``links`` pages saved
    beside the report (label -> relative address), linked under the notes. ``decision`` says which
    model was kept (``sentence``, and ``candidates``: (name, validation accuracy, kept) rows);
    ``test`` the test split's predictions (mistakes, reliability diagram, precision-recall curves);
    ``calibration`` the temperature scaling's record (:func:`headstart.evaluate.calibration.temperature_choice`).
    """
    per_class = metrics.get("per_class", {})
    classes = [str(c) for c in (metrics.get("classes") or list(per_class))]
    rows = [r for r in (history or []) if isinstance(r, Mapping)]
    history_keys, history_rows = _history_table(rows)
    ece = _number(metrics.get("ece"))

    return _environment().get_template("report.html").render(
        title=str(title),
        notes=[str(n) for n in notes],
        links=list((links or {}).items()),
        summary=[("Accuracy", _fixed(metrics.get("accuracy"), percent=True)),
                 ("Macro-F1", _fixed(metrics.get("macro_f1"))), ("ECE", _fixed(metrics.get("ece"))),
                 ("Test samples", _format(metrics.get("n")))],
        decision=_decision_rows(decision),
        confusion_png=png_base64(plot_confusion(metrics["confusion_matrix"], classes)),
        history_png=png_base64(plot_history(rows)) if len(rows) > 1 else None,
        one_step=_one_step(rows),
        history_rows=len(rows),
        calibration_sentence=_calibration_sentence(ece, calibration),
        reliability_png=None if test is None else png_base64(plot_reliability(test.y, test.proba)),
        precision_recall_png=None if test is None else png_base64(
            plot_precision_recall(test.y, test.proba, test.classes)),
        mistakes=None if test is None else mistakes(test),
        n_wrong=None if test is None else int((np.asarray(test.proba).argmax(1) != np.asarray(test.y)).sum()),
        history_keys=history_keys,
        history_table=history_rows,
        per_class_png=png_base64(plot_per_class(per_class, classes)),
        per_class=[(c, *(_fixed(per_class[c].get(m)) for m in ("precision", "recall", "f1")),
                    _format(per_class[c].get("support"))) for c in classes],
        config=_flatten(config or {}),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _fixed(value, percent: bool = False) -> str:
    number = _number(value)
    if math.isnan(number):
        return "\u2014"
    return f"{100 * number:.1f}%" if percent else f"{number:.3f}"


def _decision_rows(decision: Mapping | None) -> dict | None:
    if not decision:
        return None
    return {"sentence": str(decision.get("sentence", "")),
            "candidates": [(str(name), _fixed(accuracy, percent=True), bool(kept))
                           for name, accuracy, kept in decision.get("candidates", [])]}


def _one_step(rows: Sequence[Mapping]) -> str | None:
    """The sentence standing in for the curve of a model fitted in one step (a probe): its validation scores."""
    if len(rows) != 1:
        return None
    row = rows[0]
    return (f"{str(row.get('stage') or 'The model')[:1].upper()}{str(row.get('stage') or 'the model')[1:]} is "
            f"fitted in one step, so there is no training curve: validation accuracy "
            f"{_fixed(row.get('val_accuracy'), percent=True)}, validation loss {_fixed(row.get('val_loss'))}.")


def _calibration_sentence(ece: float, calibration: Mapping | None) -> list[str]:
    """Plain sentences on how far the confidences can be trusted, and what temperature scaling did."""
    sentences = []
    if not math.isnan(ece):
        if ece > POOR_ECE:
            sentences.append(f"Calibration is poor: a prediction's confidence is off from how often such "
                             f"predictions are right by {100 * ece:.0f} points on average (ECE {ece:.3f}); "
                             f"read the confidences as a ranking, not as probabilities.")
        else:
            sentences.append(f"Calibration is fair: confidences are within {100 * ece:.0f} points of the accuracy "
                             f"on average (ECE {ece:.3f}).")
    if calibration and "fitted_temperature" in calibration:
        before, after = calibration["val_ece_before"], calibration["val_ece_after"]
        if calibration.get("applied"):
            sentences.append(f"Temperature scaling is applied: the logits are divided by T = "
                             f"{calibration['temperature']:.2f}, fitted on the validation split, whose ECE it "
                             f"lowered from {before:.3f} to {after:.3f} (NLL {calibration['val_nll_before']:.3f} "
                             f"to {calibration['val_nll_after']:.3f}). Predictions are unchanged.")
        else:
            sentences.append(f"Temperature scaling (T = {calibration['fitted_temperature']:.2f} on the validation "
                             f"split) barely lowered its NLL ({calibration['val_nll_before']:.3f} to "
                             f"{calibration['val_nll_after']:.3f}; ECE {before:.3f} to {after:.3f}), so it is not "
                             f"applied.")
    elif calibration and calibration.get("reason"):
        sentences.append(f"No temperature scaling: {calibration['reason']}.")
    return sentences
