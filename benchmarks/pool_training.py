"""Training on the unlabeled pool: test accuracy of the labeled-only probe, self-training, label spreading and ``auto``.

For each data set the features come from headstart's features cache (as in active_learning.py);
for each labels budget and seed, that many labels are drawn at random, stratified by class
(an equal number a class), from the pool, and the rest of the pool is the unlabeled pool:

- SST-2: the pool is the train split (6,920 sentences), the test the test split (1,821); ``minilm-l6``;
- Fashion-MNIST: a pool of 10,000 train images, the 10,000 test images; ``effnet-lite0``;
- synthetic: overlapping Gaussian classes (no downloads; for smoke runs).

Each method is what ``headstart fit --mode probe --unlabeled POOL`` does on frozen features
(:mod:`headstart.learn.pool_training`): the labeled-only probe (C chosen by cross-validation over
the labels, as ``fit``'s final probe is), then the pool's candidates judged out of fold over the
labels, ``self-train`` and ``propagation`` forced (their rounds still chosen out of fold) and
``auto`` (the best one only when it beats labeled-only by more than a standard error).
Probe-level only: no fine-tuning, so minutes, not hours.

    python benchmarks/pool_training.py                       # SST-2 and Fashion-MNIST, 5 seeds
    python benchmarks/pool_training.py --quick               # smoke run: numbers mean nothing
    python benchmarks/pool_training.py --datasets synthetic --seeds 2
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np

try:
    import common
    from active_learning import LOADERS
except ImportError:
    from benchmarks import common
    from benchmarks.active_learning import LOADERS

from headstart.learn.head import fit_head, stratified_folds
from headstart.learn.pool_training import METHODS, POOL_LIMIT, PoolChoice, judge_pool, pool_head, pool_sample
from headstart.learn.probe import final_probe

BUDGETS = (20, 50, 100, 200)
SHOWN = ("none", "self-train", "propagation", "auto")


def stratified_labels(y: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """``budget`` positions, an equal share a class (the remainder to random classes)."""
    classes = np.unique(y)
    rng = np.random.default_rng(seed)
    per_class = np.full(len(classes), budget // len(classes))
    per_class[rng.choice(len(classes), budget % len(classes), replace=False)] += 1
    return np.concatenate([rng.choice(np.flatnonzero(y == c), n, replace=False) for c, n in zip(classes, per_class)])


def forced(choice: PoolChoice, method: str) -> PoolChoice:
    """The judged choice as if ``method`` had been asked for (its best candidate, whatever the gain)."""
    accuracy = choice.record["accuracy"]
    best = max((name for name in accuracy if name.startswith(method)), key=lambda name: accuracy[name])
    return PoolChoice(method, best, dict(choice.record))


def one_run(x, y, x_test, y_test, budget: int, seed: int) -> dict:
    """Every method's test accuracy on one draw of ``budget`` labels."""
    n_classes = int(y.max()) + 1
    labeled = stratified_labels(y, budget, seed)
    rest = np.setdiff1d(np.arange(len(y)), labeled)
    pool_x = x[rest[pool_sample(len(rest), seed)]]
    lx, ly = x[labeled], y[labeled]
    started = time.process_time()
    base, c = final_probe(lx, ly, lx[:0], ly[:0], n_classes, 1.0, seed=seed)
    fit = partial(fit_head, n_classes=n_classes, c=c, seed=seed)
    judged = judge_pool(fit, lx, ly, pool_x, n_classes, folds=stratified_folds(ly, seed=seed), method="auto",
                        judged_on="out of fold")
    heads = {"none": base}
    for method in ("self-train", "propagation"):
        heads[method] = pool_head(forced(judged, method), fit, lx, ly, pool_x, n_classes)
    heads["auto"] = heads[judged.method] if judged.method != "none" else base
    accuracy = {name: float((head.proba(x_test).argmax(1) == y_test).mean()) for name, head in heads.items()}
    return {"budget": budget, "seed": seed, "C": c, "accuracy": accuracy, "auto_chose": judged.method,
            "auto_candidate": judged.candidate, "held_out": judged.record["accuracy"],
            "gain": judged.record["gain"], "standard_error": judged.record["standard_error"],
            "cpu_seconds": time.process_time() - started}


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation of each method's test accuracy, by budget; how often auto used the pool."""
    table = []
    for budget in sorted({row["budget"] for row in rows}):
        runs = [row for row in rows if row["budget"] == budget]
        line = {"budget": budget, "runs": len(runs)}
        for method in SHOWN:
            values = np.array([row["accuracy"][method] for row in runs])
            line[f"{method}_mean"], line[f"{method}_std"] = float(values.mean()), float(values.std())
        line["auto_used_pool"] = sum(row["auto_chose"] != "none" for row in runs)
        line["cpu_seconds_mean"] = float(np.mean([row["cpu_seconds"] for row in runs]))
        table.append(line)
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="sst2,fashion")
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed+seeds-1 (a run "
                                                                  "that adds seeds to today's file)")
    parser.add_argument("--quick", action="store_true", help="a small pool and test set, one seed, two budgets")
    args = parser.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    seeds = 1 if args.quick else args.seeds
    budgets = budgets[:2] if args.quick else budgets
    results = {}
    for name in args.datasets.split(","):
        pool_size, test_size = (1500, 500) if args.quick else (None, None)
        x, y, x_test, y_test, backbone = LOADERS[name](pool_size, test_size)
        rows = []
        for budget in budgets:
            for seed in range(args.first_seed, args.first_seed + seeds):
                row = one_run(x, y, x_test, y_test, budget, seed)
                rows.append(row)
                print(f"{name} {budget:>4} labels seed {seed}: " + "  ".join(
                    f"{m} {row['accuracy'][m]:.3f}" for m in SHOWN) + f"  (auto: {row['auto_candidate']}, "
                    f"{row['cpu_seconds']:.0f} CPU s)", flush=True)
        summary = summarize(rows)
        columns = ["budget"] + [f"{m}_mean" for m in SHOWN] + [f"{m}_std" for m in SHOWN] + ["auto_used_pool"]
        common.print_table(summary, columns, title=f"{name} ({backbone}, pool {len(y)} items, test {len(y_test)})")
        results[name] = {"backbone": backbone, "pool": int(len(y)), "test": int(len(y_test)), "rows": rows,
                         "summary": summary}
    if not args.quick:
        write(results, budgets, seeds)


def write(results: dict, budgets: list[int], seeds: int) -> None:
    """Add these data sets' results to today's results file (data sets run separately share it)."""
    import json
    import os

    path = common.RESULTS_DIR / f"pool_training-{time.strftime('%Y-%m-%d')}.json"
    earlier = json.loads(path.read_text())["results"] if path.exists() else {}
    for name, result in results.items():
        done = {(row["budget"], row["seed"]) for row in result["rows"]}  # an earlier run's other seeds join these
        rows = [row for row in earlier.get(name, {}).get("rows", []) if (row["budget"], row["seed"]) not in done]
        result["rows"] = sorted(rows + result["rows"], key=lambda row: (row["budget"], row["seed"]))
        result.update(summary=summarize(result["rows"]), budgets=budgets,
                      seeds=len({row["seed"] for row in result["rows"]}))
    path = common.write_results("pool_training", {
        "methods": list(METHODS), "pool_limit": POOL_LIMIT, "results": {**earlier, **results},
        "load": os.getloadavg(), "notes": "probe level (frozen features); accuracy, not timing: run at nice 19 beside other "
                                          "sessions (load in 'load'), outside the timing lock, so CPU seconds are "
                                          "indicative only"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
