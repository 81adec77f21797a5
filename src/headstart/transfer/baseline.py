"""The from-scratch side every fit is checked against, the negative-transfer verdict, and ``auto``'s choice.

The scratch side is the best on the validation split of a few cheap candidates
(:mod:`headstart.transfer.scratch_models`): for text TF-IDF of words and characters with logistic
regression (one candidate); for images logistic regression on the raw pixels, an MLP for tiny images
and a small CNN. They run cheapest first within a time budget, a share of the fit's own time
(:data:`BUDGET_SHARE` of the whole, scratch included): a candidate that would not end within what
is left is skipped and the report says so. The cheapest always runs, even past the budget (which a
probe on cached features can make a fraction of a second): a verdict needs a baseline, and the
cheapest is a linear model that takes seconds.

Two comparisons, both paired (the two models answer the same items):

- on the test split, the accuracy difference (transfer minus scratch) with a paired bootstrap
  interval: the verdict; when its lower end is not above zero it says plainly "transfer does not
  help here";
- on the validation split, scratch minus transfer, each fitted on the training split only: with
  ``mode="auto"`` the scratch model is shipped when the lower end of that interval is above zero
  (better beyond noise). The scratch side's figure is the best of a few candidates on those items,
  a little optimistic, which the interval's margin absorbs in part; ties and near ties keep transfer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from headstart.data.dataset import Dataset
from headstart.progress import progress_bar, say
from headstart.transfer.scratch_models import Fitted, SkipCandidate, Task, cnn, mlp, pixel_lr, tfidf_words_chars

LEVEL = 0.95
BUDGET_SHARE = 0.2  # of the whole fit's time, the scratch candidates included
TEXT_METHOD = "TF-IDF + logistic regression"
IMAGE_METHOD = "small CNN trained from scratch"
# (name, fit, relative cost), cheapest first. A linear candidate after the first cannot be stopped
# halfway, so its cost is planned as this factor times the first one's measured time (None: the
# candidate times itself; the networks time their first step).
TEXT_CANDIDATES = (("tfidf-words-chars", tfidf_words_chars, None),)
IMAGE_CANDIDATES = (("pixel-lr", pixel_lr, None), ("mlp", mlp, None), ("cnn", cnn, None))


# -- the compatible entry points (learning curves) --------------------------------------------------

def text_scratch(train_texts, train_y: np.ndarray, val_texts, val_y: np.ndarray, n_classes: int, *,
                 seed: int = 0):
    """Fit TF-IDF (words and characters) + logistic regression; return ``predict_proba(texts)`` and info."""
    fitted = tfidf_words_chars(Task(list(train_texts), np.asarray(train_y), list(val_texts), np.asarray(val_y),
                                    n_classes, seed))
    return fitted.predictor.predict_proba, {"method": TEXT_METHOD, **fitted.info}


def image_scratch(train_paths, train_y: np.ndarray, val_paths, val_y: np.ndarray, n_classes: int, *,
                  seed: int = 0, size: int | None = None, min_steps: int = 300, mirror: bool = True):
    """Train the small CNN from random weights; return ``predict_proba(paths)`` and info.

    Images are stretched to ``size`` (default: their short side, between 16 and 64 px); enough epochs
    for ``min_steps`` steps (5 to 40), AdamW, random flips (where ``mirror``), early stopping on
    validation accuracy, best weights restored.
    """
    task = Task(list(train_paths), np.asarray(train_y), list(val_paths), np.asarray(val_y), n_classes, seed, mirror)
    fitted = cnn(task, size=size, min_steps=min_steps)
    val_accuracy = (None if fitted.val_proba is None
                    else float((fitted.val_proba.argmax(1) == task.val_y).mean()))
    return fitted.predictor.predict_proba, {"method": IMAGE_METHOD, **fitted.info, "val_accuracy": val_accuracy}


# -- choosing the scratch model -------------------------------------------------------------------

@dataclass
class Selection:
    """The candidates tried, and the best of them on validation.

    Attributes:
        best: the chosen candidate (None when none could be fitted).
        rows: one a candidate, cheapest first: ``name``, ``method``, ``val_accuracy``, ``seconds``, or
            ``skipped`` (why).
        budget_s: the seconds the candidates were given (None: no limit).
        seconds: the seconds they took.
    """

    best: Fitted | None
    rows: list[dict] = field(default_factory=list)
    budget_s: float | None = None
    seconds: float = 0.0


def choose_scratch(train: Dataset, val: Dataset, classes, *, budget_s: float | None = None, seed: int = 0,
                   mirror: bool = True, candidates=None) -> Selection:
    """Fit the modality's candidates cheapest first within ``budget_s`` and keep the best on validation.

    Args:
        train: the labeled training split.
        val: the labeled validation split (without items, the last candidate fitted is kept: the
            most capable, and nothing can tell them apart).
        classes: label names, in the model's output order.
        budget_s: seconds for all candidates (None: no limit); the first always runs.
        seed: seeds every candidate.
        mirror: whether images may be flipped in training.
        candidates: ``(name, fit(task), relative cost or None)`` triples (default: the modality's).

    Returns:
        A :class:`Selection`; ties on validation go to the cheaper candidate.
    """
    if candidates is None:
        candidates = TEXT_CANDIDATES if train.modality == "text" else IMAGE_CANDIDATES
    started = time.perf_counter()
    task = Task(train.items, train.label_ids(classes), val.items, val.label_ids(classes), len(classes), seed,
                mirror, None if budget_s is None else started + budget_s)
    rows, fitted = [], []
    with progress_bar("from-scratch baselines", len(candidates)) as advance:
        for i, entry in enumerate(candidates):
            _try_candidate(task, i, entry, rows, fitted)
            advance()
    best = None
    if fitted:
        if all(accuracy is not None for accuracy, _, _ in fitted):
            best = max(fitted, key=lambda row: (row[0], -row[1]))[2]
        else:
            best = fitted[-1][2]
    return Selection(best, rows, budget_s, time.perf_counter() - started)


def _try_candidate(task: Task, i: int, entry: tuple, rows: list, fitted: list) -> None:
    """Fit candidate ``i`` unless the budget is spent: its row goes to ``rows``, the fit to ``fitted``.

    ``entry``: (name, fit(task), relative cost or None), as in :func:`choose_scratch`.
    """
    name, fit, relative_cost = entry
    begun = time.perf_counter()
    if i and task.seconds_left() <= 0:
        rows.append({"name": name, "skipped": "no time left in the budget"})
        return
    if i and relative_cost and rows[0].get("seconds") is not None:
        needed = relative_cost * rows[0]["seconds"]
        if needed > task.seconds_left():
            rows.append({"name": name, "skipped": f"it would need about {needed:.0f} s, "
                                                  f"{task.seconds_left():.0f} s were left"})
            return
    try:
        candidate = fit(task)
    except SkipCandidate as why:
        rows.append({"name": name, "skipped": str(why), "seconds": time.perf_counter() - begun})
        return
    except ValueError as error:  # e.g. no vocabulary in texts of one character, a class of one item
        rows.append({"name": name, "skipped": f"could not be fitted: {error}"})
        return
    accuracy = None if candidate.val_proba is None else float((candidate.val_proba.argmax(1) == task.val_y).mean())
    rows.append({"name": name, "method": candidate.method, "val_accuracy": accuracy,
                 "seconds": time.perf_counter() - begun, **({"cut_short": candidate.info["cut_short"]}
                                                            if "cut_short" in candidate.info else {})})
    fitted.append((accuracy, i, candidate))


def fit_scratch(train: Dataset, val: Dataset, classes, *, seed: int = 0, mirror: bool = True,
                budget_s: float | None = None):
    """The best scratch candidate of the data's modality, fitted on ``train`` and chosen on ``val``.

    Args:
        train: the labeled training split.
        val: the labeled validation split.
        classes: label names, in the model's output order.
        seed: seeds the candidates' training.
        mirror: whether images may be flipped in training.
        budget_s: seconds for the candidates (None: no limit).

    Returns:
        ``(predict_proba(items), info)`` of the chosen candidate.

    Raises:
        ValueError: no candidate could be fitted.
    """
    selection = choose_scratch(train, val, classes, budget_s=budget_s, seed=seed, mirror=mirror)
    if selection.best is None:
        raise ValueError("; ".join(f"{row['name']}: {row['skipped']}" for row in selection.rows))
    return selection.best.predictor.predict_proba, {"method": selection.best.method, **selection.best.info}


# -- the comparison -------------------------------------------------------------------------------

def paired_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray, *, n_boot: int = 2000, level: float = LEVEL,
                     seed: int = 0) -> dict:
    """Accuracy difference a - b on the same items and its percentile bootstrap interval.

    The items are resampled with replacement ``n_boot`` times, the same resample for both
    models (they were tested on the same items, so their errors are paired).
    """
    a, b = np.asarray(correct_a, dtype=np.float64), np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two 1-D arrays of the same non-zero length, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(a), size=(n_boot, len(a)))
    diffs = (a[index] - b[index]).mean(axis=1)
    tail = (1 - level) / 2
    return {"difference": float(a.mean() - b.mean()), "ci_low": float(np.quantile(diffs, tail)),
            "ci_high": float(np.quantile(diffs, 1 - tail)), "level": level, "n": int(len(a))}


def verdict(comparison: dict, method: str) -> tuple[bool, str]:
    """Whether transfer clearly helps (the interval's lower end above 0) and the sentence saying so."""
    diff, low, high = (100 * comparison[k] for k in ("difference", "ci_low", "ci_high"))
    interval = f"{comparison['level']:.0%} CI {low:+.1f} to {high:+.1f} points on {comparison['n']} test items"
    side = "more" if diff >= 0 else "less"
    gap = (f"the pretrained model is {abs(diff):.1f} points {side} accurate than the from-scratch baseline, "
           f"{method} ({interval})")
    if low > 0:
        return True, f"Verdict: transfer helps: {gap}."
    if high < 0:
        return False, f"Verdict: transfer does not help here: {gap}; the model from scratch is clearly better."
    return False, f"Verdict: transfer does not help here: {gap}, which is not clearly better."


def _points(comparison: dict) -> str:
    return (f"{comparison['level']:.0%} CI {100 * comparison['ci_low']:+.1f} to {100 * comparison['ci_high']:+.1f} "
            f"points on {comparison['n']}")


def shipping(mode: str, validation: dict | None, comparison: dict) -> tuple[str, str]:
    """(``scratch`` or ``transfer``, the sentence saying which model was shipped and why).

    Args:
        mode: the fit's mode; only ``auto`` may ship the scratch model.
        validation: scratch minus transfer on the validation split (:func:`paired_bootstrap`, with
            ``scratch`` and ``transfer`` accuracies), or None when it could not be measured.
        comparison: transfer minus scratch on the test split.
    """
    if validation is None:
        return "transfer", ("Shipped: the transfer model (there are no validation items to compare the two "
                            "on).")
    side = (f"validation accuracy {validation['scratch']:.1%} from scratch against {validation['transfer']:.1%} "
            f"with transfer, scratch {100 * validation['difference']:+.1f} points "
            f"({_points(validation)} validation items)")
    if mode == "auto" and validation["ci_low"] > 0:
        return "scratch", (f"Shipped: the model trained from scratch, which beat transfer on the validation split "
                           f"beyond noise: {side}.")
    if mode == "auto":
        return "transfer", f"Shipped: the transfer model; scratch was not better beyond noise: {side}."
    loss = comparison["difference"]
    cost = (f"it is {100 * -loss:.1f} points less accurate on test than the model from scratch "
            f"({_points(comparison)} test items)" if loss < 0 else
            f"it is {100 * loss:.1f} points more accurate on test ({_points(comparison)} test items)")
    return "transfer", f"Shipped: the transfer model, as --mode {mode} asked; {cost}; {side}."


def compare_with_scratch(train: Dataset, val: Dataset, test: Dataset, classes, transfer_proba: np.ndarray, *,
                         transfer_val_proba: np.ndarray | None = None, mode: str = "auto",
                         fit_seconds: float | None = None, seed: int = 0,
                         mirror: bool = True) -> tuple[dict, Fitted | None]:
    """Choose the scratch model, compare it with the transfer model, and say which to ship.

    Args:
        train: the training split.
        val: the validation split the candidates and the two sides are compared on.
        test: the test split both models are scored on.
        classes: label names, in the columns' order of the probabilities.
        transfer_proba: the transfer model's test probabilities (n, k).
        transfer_val_proba: its validation probabilities (m, k), from the model fitted on the training
            split only (None: the scratch model is never shipped).
        mode: the fit's mode: only ``auto`` ships the scratch model.
        fit_seconds: the fit's time so far: the candidates get :data:`BUDGET_SHARE` of the whole
            (None: no limit).
        seed: seeds the candidates and the bootstraps.
        mirror: whether images may be flipped in training.

    Returns:
        (comparison, the scratch candidate to ship or None). The comparison is JSON-ready:
        ``method``, ``name``, ``accuracy`` (scratch), ``transfer_accuracy``, ``difference``, ``ci_low``,
        ``ci_high``, ``level``, ``n``, ``helps``, ``verdict``, ``validation``, ``shipped``,
        ``candidates``, ``budget_s``, ``seconds``, ``share_of_fit`` and the chosen candidate's settings
        under ``info``.

    Raises:
        ValueError: no candidate could be fitted.
    """
    started = time.perf_counter()
    budget = None if fit_seconds is None else fit_seconds * BUDGET_SHARE / (1 - BUDGET_SHARE)
    selection = choose_scratch(train, val, classes, budget_s=budget, seed=seed, mirror=mirror)
    best = selection.best
    if best is None:
        raise ValueError("; ".join(f"{row['name']}: {row['skipped']}" for row in selection.rows))
    truth = test.label_ids(classes)
    scratch_correct = best.predictor.predict_proba(test.items).argmax(1) == truth
    transfer_correct = np.asarray(transfer_proba).argmax(1) == truth
    comparison = paired_bootstrap(transfer_correct, scratch_correct, seed=seed)
    helps, sentence = verdict(comparison, best.method)
    validation = None
    if transfer_val_proba is not None and best.val_proba is not None and len(val):
        val_y = val.label_ids(classes)
        scratch_val = best.val_proba.argmax(1) == val_y
        transfer_val = np.asarray(transfer_val_proba).argmax(1) == val_y
        validation = {**paired_bootstrap(scratch_val, transfer_val, seed=seed),
                      "scratch": float(scratch_val.mean()), "transfer": float(transfer_val.mean())}
    shipped, why = shipping(mode, validation, comparison)
    seconds = time.perf_counter() - started
    result = {"method": best.method, "name": best.name, "accuracy": float(scratch_correct.mean()),
              "transfer_accuracy": float(transfer_correct.mean()), **comparison, "helps": helps,
              "verdict": f"{sentence} {why}", "validation": validation, "shipped": shipped,
              "candidates": selection.rows, "budget_s": budget, "seconds": seconds,
              "share_of_fit": None if fit_seconds is None else seconds / (fit_seconds + seconds), "info": best.info}
    skipped = [row["name"] for row in selection.rows if "skipped" in row]
    if skipped:
        say(f"scratch candidates skipped: {', '.join(skipped)} (budget {budget or 0:.1f} s)")
    return result, best if shipped == "scratch" else None


def candidates_sentence(comparison: dict) -> str:
    """One sentence for the report: each candidate's validation accuracy or why it was skipped, and the time."""
    parts = []
    for row in comparison.get("candidates", []):
        if "skipped" in row:
            parts.append(f"{row['name']} skipped ({row['skipped']})")
        elif row.get("val_accuracy") is None:
            parts.append(f"{row['name']} (no validation items)")
        else:
            cut = " (cut short at the budget)" if "cut_short" in row else ""
            parts.append(f"{row['name']} {row['val_accuracy']:.1%}{cut}")
    budget = comparison.get("budget_s")
    share = comparison.get("share_of_fit")
    timing = (f"{comparison['seconds']:.1f} s" + ("" if budget is None else f" of a {budget:.1f} s budget")
              + ("" if share is None else f", {share:.0%} of the fit"))
    return (f"Scratch candidates on the validation split: {'; '.join(parts)}; kept {comparison['name']} "
            f"({timing}).")


def scratch_comparison(train: Dataset, val_set: Dataset, test_set: Dataset, classes, proba: np.ndarray, *,
                       seed: int = 0, mirror: bool = True, val_proba: np.ndarray | None = None, mode: str = "auto",
                       fit_seconds: float | None = None) -> tuple[dict, object]:
    """The best from-scratch candidate against the transfer model, and whether ``auto`` ships it.

    A baseline that cannot be fitted on these data is reported as skipped rather than failing the fit.

    Args:
        train: the training split the baseline learns from.
        val_set: the validation split.
        test_set: the test split both models are scored on.
        classes: label names, in the columns' order of ``proba``.
        proba: the transfer model's test probabilities (n, k).
        seed: seeds the baseline and the bootstrap.
        mirror: whether the image baseline may flip training images (as for :func:`fit`).
        val_proba: the transfer model's validation probabilities before its refit (None: never ship scratch).
        mode: the fit's mode; only ``auto`` ships the model from scratch.
        fit_seconds: the fit's time so far, which bounds the candidates' (None: no bound).

    Returns:
        (the comparison: ``accuracy``, the difference with its interval, ``verdict``, ``shipped``,
        ``candidates``... or ``{"skipped": reason}``; the fitted scratch candidate to ship, or None).
    """
    say("training the from-scratch baselines")
    shipped = None
    try:
        result, shipped = compare_with_scratch(train, val_set, test_set, classes, proba, transfer_val_proba=val_proba,
                                               mode=mode, fit_seconds=fit_seconds, seed=seed, mirror=mirror)
    except ValueError as error:  # e.g. TF-IDF finds no vocabulary in texts of one character
        result = {"skipped": f"the scratch baseline could not be fitted: {error}"}
    say(result.get("verdict") or result["skipped"])
    return result, shipped
