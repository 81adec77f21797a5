"""Label issues at small scale: precision and recall of flagged labels, headstart beside cleanlab.

For each size (50, 100, 200, 500 labels) and seed, a random sample of SST-2's train split
(``minilm-l6`` features from headstart's features cache) has 10% of its labels flipped; the
out-of-fold probabilities are headstart's (``held_out_proba``, as ``headstart label issues``
computes them); on those same probabilities:

- ``cleanlab``: ``cleanlab.filter.find_label_issues(labels, pred_probs)`` with default arguments;
- ``headstart``: what ``headstart label issues`` queues: confident learning's flags (cleanlab's
  defaults, ranked), none while the out-of-fold model is not clearly better than chance
  (:mod:`headstart.labeling.chance_check`);
- variants considered for small scale, each without the hold-back: cleanlab's ``filter_by="both"``
  and ``"confident_learning"``; "argmax": every label the model gives another class; "cap5%":
  cleanlab's flags ranked by self-confidence, at most 5% of the labels ("cap10%": 10%, the flip share
  here, so it flatters that cap); "other>=0.8": cleanlab's
  flags where the model gives another label at least 0.8.

The ``shuffled`` setting pairs the same labels with another item's features: a model at chance,
the case the hold-back is for. Precision with no flags counts as undefined (left out of the mean);
"prevented" counts the flags the hold-back kept from the queue and how many of them were wrong
(correct labels that would have been flagged). Accuracy, not timing: load does not change it.

    python benchmarks/label_quality.py                 # 4 sizes x 5 seeds, SST-2 and its shuffled control
    python benchmarks/label_quality.py --quick         # 50 and 100 labels, 2 seeds
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

try:
    import benchmark_data
    import common
except ImportError:
    from benchmarks import benchmark_data, common

from headstart.labeling.chance_check import check_better_than_chance
from headstart.labeling.issues import find_issues
from headstart.labeling.loop_probe import held_out_proba

SIZES = (50, 100, 200, 500)
FLIP_SHARE = 0.10
METHODS = ("headstart", "cleanlab", "cl-both", "cl-confident-learning", "argmax", "cap5%", "cap10%", "other>=0.8")


def load_sst2_features() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from headstart.backbones import create_backbone
    from headstart.data.dataset import text_hash
    from headstart.features.extract import cached_features

    texts, labels = benchmark_data.sst2("train")
    classes = sorted(set(labels))
    x = cached_features(create_backbone("minilm-l6"), texts, [text_hash(t) for t in texts])
    return np.asarray(x, dtype=np.float32), np.array([classes.index(name) for name in labels]), classes


def flags_of(method: str, given: np.ndarray, proba: np.ndarray) -> np.ndarray:
    from cleanlab.filter import find_label_issues

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "cleanlab":
            return np.flatnonzero(find_label_issues(given, proba))
        if method == "cl-both":
            return np.flatnonzero(find_label_issues(given, proba, filter_by="both"))
        if method == "cl-confident-learning":
            return np.flatnonzero(find_label_issues(given, proba, filter_by="confident_learning"))
    if method == "argmax":
        return np.flatnonzero(proba.argmax(axis=1) != given)
    if method.startswith("cap"):
        share = float(method[3:-1]) / 100
        return find_issues(given, proba)[:int(np.ceil(share * len(given)))]
    if method == "other>=0.8":
        flags = find_issues(given, proba)
        other = proba.copy()
        other[np.arange(len(given)), given] = 0
        return flags[other[flags].max(axis=1) >= 0.8]
    raise ValueError(method)


def one_run(x: np.ndarray, y: np.ndarray, classes: list[str], size: int, seed: int, shuffled: bool) -> dict:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(y), size, replace=False)
    features = x[rng.permutation(chosen)] if shuffled else x[chosen]
    truth = y[chosen]
    k = len(classes)
    flipped = rng.choice(size, int(round(FLIP_SHARE * size)), replace=False)
    given = truth.copy()
    given[flipped] = (given[flipped] + rng.integers(1, k, len(flipped))) % k
    proba = held_out_proba(features, given, k, seed=seed)
    check = check_better_than_chance(given, proba, classes)
    is_flip = np.zeros(size, dtype=bool)
    is_flip[flipped] = True
    confident = find_issues(given, proba)
    run = {"size": size, "seed": seed, "shuffled": shuffled, "flipped": int(len(flipped)),
           "oof_accuracy": check.accuracy, "oof_lower": check.lower, "chance": check.chance,
           "held_back": not check.clear, "labels_needed": check.labels_needed,
           "oof_accuracy_true_labels": float((proba.argmax(axis=1) == truth).mean()), "methods": {}}
    for method in METHODS:
        flags = (np.zeros(0, dtype=np.int64) if not check.clear else confident) if method == "headstart" \
            else flags_of(method, given, proba)
        hits = int(is_flip[flags].sum())
        run["methods"][method] = {"flagged": int(len(flags)), "true_flags": hits,
                                  "precision": hits / len(flags) if len(flags) else None,
                                  "recall": hits / len(flipped)}
    run["prevented"] = {"flags": int(len(confident)) if not check.clear else 0,
                        "wrong": int((~is_flip[confident]).sum()) if not check.clear else 0}
    return run


def summarize(runs: list[dict]) -> list[dict]:
    rows = []
    for shuffled in (False, True):
        for size in sorted({r["size"] for r in runs}):
            group = [r for r in runs if r["size"] == size and r["shuffled"] == shuffled]
            if not group:
                continue
            row = {"setting": "shuffled" if shuffled else "sst2", "labels": size, "seeds": len(group),
                   "oof acc": float(np.mean([r["oof_accuracy"] for r in group])),
                   "held back": f"{sum(r['held_back'] for r in group)}/{len(group)}",
                   "prevented": sum(r["prevented"]["flags"] for r in group),
                   "prevented wrong": sum(r["prevented"]["wrong"] for r in group)}
            for method in METHODS:
                scores = [r["methods"][method] for r in group]
                precisions = [s["precision"] for s in scores if s["precision"] is not None]
                flagged = sum(s["flagged"] for s in scores)
                row[f"{method} flagged"] = flagged / len(group)
                row[f"{method} P"] = float(np.mean(precisions)) if precisions else None
                # pooled precision: all seeds' flags together, so a seed with 1 flag weighs 1
                row[f"{method} P pooled"] = sum(s["true_flags"] for s in scores) / flagged if flagged else None
                row[f"{method} R"] = float(np.mean([s["recall"] for s in scores]))
                pooled, recall = row[f"{method} P pooled"], row[f"{method} R"]
                row[f"{method} F1"] = 2 * pooled * recall / (pooled + recall) if pooled and recall else 0.0
            rows.append(row)
    return rows


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="50 and 100 labels, 2 seeds: numbers mean little")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.seeds = "50,100", 2
    args.sizes = [int(s) for s in args.sizes.split(",")]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from headstart.progress import progress_bar

    x, y, classes = load_sst2_features()
    jobs = [(size, seed, shuffled) for shuffled in (False, True) for size in args.sizes for seed in range(args.seeds)]
    runs = []
    with progress_bar("flagging runs", len(jobs)) as advance:
        for size, seed, shuffled in jobs:
            runs.append(one_run(x, y, classes, size, seed, shuffled))
            advance()
    rows = summarize(runs)
    common.print_table(rows, ["setting", "labels", "seeds", "oof acc", "held back", "prevented", "prevented wrong"],
                       title="hold-back (Wilson 95% lower bound of out-of-fold accuracy vs the majority share)")
    for method in METHODS:
        common.print_table(rows, ["setting", "labels", f"{method} flagged", f"{method} P", f"{method} P pooled",
                                  f"{method} R", f"{method} F1"],
                           title=f"{method}: flags a run, precision (mean over seeds with flags; pooled), recall, "
                                 f"F1 (pooled P); 10% of labels flipped")
    side = [{"labels": r["labels"], "held back": r["held back"],
             **{f"{m} P/R": f"{_fmt(r[f'{m} P pooled'])}/{_fmt(r[f'{m} R'])}" for m in METHODS}}
            for r in rows if r["setting"] == "sst2"]
    common.print_table(side, ["labels", "held back", *[f"{m} P/R" for m in METHODS]],
                       title="SST-2 side by side: pooled precision / recall of the flags")
    stem = "label_quality-quick" if args.quick else "label_quality"
    path = common.write_results(stem, {
        "quick": args.quick, "config": {"sizes": args.sizes, "seeds": args.seeds, "flip_share": FLIP_SHARE,
                                        "backbone": "minilm-l6", "data": "sst2 train split"},
        "notes": "accuracy of flags, not timing; other sessions shared the 2 cores (see machine load)",
        "summary": rows, "runs": runs})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
