"""Zero-shot accuracy from class names alone (headstart fit --zero-shot), with no labels.

The sentence encoder (minilm-l6) embeds each class's description through templates; items are
scored by cosine to the class prototypes, calibrated on the pool's own similarities
(:mod:`headstart.learn.zero_shot`). Variants side by side:

- templates: the bare description ("{}") or headstart's four (``TEMPLATES``), averaged;
- descriptions: the class names alone, or a short description per class (below);
- calibration: none (cosine times 50), center (minus each class's pool mean), standardize (and
  divided by its spread, times the temperature);
- refine: 0 to 5 steps of moving the prototypes towards the pool (``refine_prototypes``);
- the labeling loop's first batch (10 or 20 items of a 2,000-item pool from the training split):
  the cold start, random items, or the zero-shot start, and the loop's probe on their labels;
- pool: the evaluated items themselves (transductive: their texts, never their labels), or for
  SST-2 and TREC a pool drawn from the training split (the test items unseen).

The defaults (templates, calibration, temperature) are chosen on the development sets, MR (2,000
snippets) and TREC's training split (2,000 questions); SST-2 test, TREC test and CR are reported.
For reference: the majority-class rate (what an all-one-class guess scores) and a probe on 16
labels a class (headstart's ``fit_head``, C=1, class-weighted; mean over 5 draws; CR's drawn from
CR and tested on the rest).

    python benchmarks/zero_shot.py            # all (a few minutes: embedding ~12,000 sentences)
    python benchmarks/zero_shot.py --quick    # 300 items a set: numbers mean little
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

import numpy as np

try:
    import benchmark_data
    import common
except ImportError:
    from benchmarks import benchmark_data, common

from headstart.backbones import create_backbone
from headstart.data.dataset import text_hash
from headstart.evaluate.calibration import negative_log_likelihood
from headstart.evaluate.metrics import classification_metrics
from headstart.features.extract import cached_features, compute_features
from headstart.learn.head import fit_head
from headstart.learn.zero_shot import CALIBRATIONS, REFINE_STEPS, TEMPLATES, zero_shot_head

DESCRIPTIONS = {
    "sst2": {"negative": "a negative movie review", "positive": "a positive movie review"},
    "mr": {"negative": "a negative movie review", "positive": "a positive movie review"},
    "cr": {"negative": "a negative product review", "positive": "a positive product review"},
    "trec": {"abbreviation": "a question about an abbreviation", "description": "a question asking for a "
             "definition or description", "entity": "a question about a thing", "human": "a question about a "
             "person", "location": "a question about a place", "numeric": "a question about a number or a date"},
}
DESCRIPTIONS["trec_dev"] = DESCRIPTIONS["trec"]
# name -> (file evaluated, file of the separate pool or None, role)
SETS = {"mr": ("mr.csv", None, "dev"), "trec_dev": ("trec_train.csv", None, "dev"),
        "sst2": ("sst2_test.csv", "sst2_train.csv", "test"), "trec": ("trec_test.csv", "trec_train.csv", "test"),
        "cr": ("cr.csv", None, "test")}
TEMPLATE_SETS = {"bare": ("{}",), "four": TEMPLATES}
REFINE = (1, 2, 5)  # prototype refinement steps on the pool (0 in the rows before)
TEMPERATURES = (1.0, 3.0, 5.0)  # beside the default 2, which the rows above use
DEV_SAMPLE = 2000
POOL_SAMPLE = 2000
PROBE_PER_CLASS, PROBE_DRAWS = 16, 5
FIRST_BATCHES, FIRST_SEEDS = (10, 20), 5  # the labeling loop's first batch (its default batch is 10)


def read_csv(name: str, limit: int | None, seed: int = 0) -> tuple[list[str], list[str]]:
    with open(benchmark_data.text_data_dir() / name, newline="", encoding="utf-8") as f:
        rows = [(row["text"], row["label"]) for row in csv.DictReader(f)]
    if limit is not None and len(rows) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=limit, replace=False))
        rows = [rows[i] for i in keep]
    return [text for text, _ in rows], [label for _, label in rows]


def evaluate(name: str, backbone, *, quick: bool) -> dict:
    file, pool_file, role = SETS[name]
    limit = 300 if quick else (DEV_SAMPLE if role == "dev" else None)
    texts, labels = read_csv(file, limit)
    classes = sorted(set(labels))
    y = np.array([classes.index(label) for label in labels])
    features = cached_features(backbone, texts, [text_hash(t) for t in texts])
    pool = None
    if pool_file is not None:
        pool_texts, pool_labels = read_csv(pool_file, 300 if quick else POOL_SAMPLE, seed=1)
        pool = (cached_features(backbone, pool_texts, [text_hash(t) for t in pool_texts]),
                np.array([classes.index(label) for label in pool_labels]))

    def embed(items):
        return compute_features(backbone, items, description="class descriptions")

    rows = []

    def run(templates: str, described: bool, calibration: str, pool_name: str, temperature=None, refine=0):
        calibrate_on = features if pool_name == "self" else pool[0]
        made = zero_shot_head(embed, classes, DESCRIPTIONS[name] if described else None, calibrate_on,
                              templates=TEMPLATE_SETS[templates], calibration=calibration, temperature=temperature,
                              refine_steps=refine)
        proba = made.head.proba(features)
        metrics = classification_metrics(y, proba, classes)
        predicted = np.bincount(proba.argmax(axis=1), minlength=len(classes)) / len(y)
        rows.append({"set": name, "templates": templates, "descriptions": "described" if described else "names",
                     "calibration": calibration, "refine": made.refine_steps, "pool": pool_name, "temperature": made.temperature,
                     "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "ece": metrics["ece"],
                     "nll": negative_log_likelihood(y, proba), "largest_predicted_share": float(predicted.max())})

    for templates in TEMPLATE_SETS:
        for described in (False, True):
            for calibration in CALIBRATIONS:
                run(templates, described, calibration, "self")
    for temperature in TEMPERATURES:
        run("four", True, "standardize", "self", temperature)
    for refine in REFINE:
        run("four", True, "standardize", "self", refine=refine)
    run("four", False, "standardize", "self", refine=REFINE_STEPS)
    if pool is not None:
        for refine in (0, REFINE_STEPS):
            run("four", True, "standardize", "train split", refine=refine)
            run("four", False, "standardize", "train split", refine=refine)
    counts = np.bincount(y, minlength=len(classes))
    reference = {"majority_rate": float(counts.max() / len(y)), "n": len(y), "classes": classes}
    if role == "test":
        train_x, train_y = pool if pool is not None else (features, y)
        accuracies = []
        per_class = int(min(PROBE_PER_CLASS, np.bincount(train_y).min()))  # TREC's rare class in a --quick sample
        for draw in range(PROBE_DRAWS):
            chosen = common.sample_per_class(train_y, per_class, seed=draw)
            head = fit_head(train_x[chosen], train_y[chosen], len(classes), c=1.0, seed=draw)
            held = np.ones(len(y), dtype=bool)
            if pool is None:  # drawn from the evaluated set itself: tested on the rest
                held[chosen] = False
            accuracies.append(float((head.proba(features[held]).argmax(axis=1) == y[held]).mean()))
        reference["probe_16_per_class"] = {"mean": float(np.mean(accuracies)), "min": float(min(accuracies)),
                                           "max": float(max(accuracies))}
    result = {"rows": rows, "reference": reference, "role": role}
    if pool is not None:
        result["first_batch"] = first_batch(name, classes, embed, pool, features, y)
    return result


def first_batch(name: str, classes: list[str], embed, pool, test_x: np.ndarray, test_y: np.ndarray) -> list[dict]:
    """The labeling loop's first batch from a pool of the training split: the cold start (k-means centres),
    random items, or the zero-shot start (class-balanced by the zero-shot model's pool predictions);
    the loop's probe on those labels, tested. The first batch's classes and the probe's accuracy."""
    from headstart.labeling.loop_probe import fit_loop_probe, pool_scaling
    from headstart.labeling.strategies import class_balanced, cold_start

    pool_x, pool_y = pool
    scaling, everything = pool_scaling(pool_x), np.arange(len(pool_x))
    zero_shot = zero_shot_head(embed, classes, DESCRIPTIONS[name], pool_x).head.proba(pool_x)
    rows = []
    for size in FIRST_BATCHES:
        choices = {"cold start": [cold_start(pool_x, everything, size, seed) for seed in range(FIRST_SEEDS)],
                   "random": [np.random.default_rng(seed).choice(everything, size, replace=False)
                              for seed in range(FIRST_SEEDS)],
                   "zero-shot start": [class_balanced(zero_shot, everything, size, np.zeros(len(classes)))]}
        for method, picks in choices.items():
            accuracies, covered = [], []
            for picked in picks:
                labels = pool_y[picked]
                covered.append(len(np.unique(labels)))
                if covered[-1] < 2:  # no probe of one class: the loop would cold-start again
                    accuracies.append(float(np.mean(test_y == labels[0])))
                    continue
                head = fit_loop_probe(pool_x[picked], labels, len(classes), scaling)
                accuracies.append(float(np.mean(head.proba(test_x).argmax(axis=1) == test_y)))
            rows.append({"set": name, "labels": size, "first batch": method, "runs": len(picks),
                         "classes_covered": float(np.mean(covered)), "probe_accuracy": float(np.mean(accuracies)),
                         "min": float(min(accuracies)), "max": float(max(accuracies))})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS))
    parser.add_argument("--quick", action="store_true", help="300 items a set (a smoke run)")
    args = parser.parse_args()
    backbone = create_backbone("minilm-l6")
    results = {}
    for name in args.sets.split(","):
        results[name] = evaluate(name, backbone, quick=args.quick)
        common.print_table(results[name]["rows"], ["templates", "descriptions", "calibration", "refine", "pool", "temperature",
                                                   "accuracy", "macro_f1", "ece", "nll", "largest_predicted_share"],
                           title=f"{name} ({results[name]['role']}, {results[name]['reference']['n']} items)")
        reference = results[name]["reference"]
        probe = reference.get("probe_16_per_class")
        print(f"reference: majority class {reference['majority_rate']:.4f}"
              + (f"; probe on {PROBE_PER_CLASS} labels a class {probe['mean']:.4f} "
                 f"({probe['min']:.4f}-{probe['max']:.4f}, {PROBE_DRAWS} draws)" if probe else ""))
    batches = [row for result in results.values() for row in result.get("first_batch", [])]
    if batches:
        common.print_table(batches, ["set", "labels", "first batch", "runs", "classes_covered", "probe_accuracy",
                                     "min", "max"], title="the labeling loop's first batch, then its probe")
    default = [(name, next(row for row in result["rows"]
                           if (row["templates"], row["descriptions"], row["calibration"], row["pool"],
                               row["temperature"], row["refine"]) ==
                           ("four", "described", "standardize", "self", 2.0, REFINE_STEPS)))
               for name, result in results.items()]
    common.print_table([{"set": name, **row} for name, row in default],
                       ["set", "accuracy", "macro_f1", "ece"], title="headstart's default (four templates, "
                       f"described, standardized on the items, temperature 2, {REFINE_STEPS} refinement steps)")
    if not args.quick:
        path = common.write_results("zero_shot", {
            "backbone": "minilm-l6", "descriptions": DESCRIPTIONS, "templates": TEMPLATE_SETS,
            "results": results, "load": os.getloadavg(),
            "notes": "accuracy only, nothing timed; the defaults were chosen on the dev sets (mr, trec_dev); "
                     "'self' calibrates on the evaluated items' texts (never their labels)"})
        print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
