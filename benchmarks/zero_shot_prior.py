"""What the class names' zero-shot prior adds to a text fit with few labels (headstart.fit, minilm-l6).

For each data set, number of labels a class and seed, the same random training labels are fitted
three ways, side by side: without the prior (``zero_shot_prior=False``), with it from the class names,
and with it from short descriptions (``describe=``, the ones ``benchmarks/zero_shot.py`` uses). The
training labels are drawn per class from the training split (SST-2: 10, 25, 50 and 100 a class; TREC,
six classes whose names say little: 4, 8, 16 and 32), the test split is the whole of it; ``fit``
splits the labels into train and validation as it does for a user. Reported: test accuracy, the
probe's share of the blend (1: the prior took no part) and, with ``--modes auto``, which model
``auto`` kept.

    python benchmarks/zero_shot_prior.py                       # probe mode, 5 seeds (a few minutes)
    python benchmarks/zero_shot_prior.py --modes auto --per-class sst2=10,25 --seeds 3   # fine-tunes: slow
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

try:
    import benchmark_data
    import common
    from zero_shot import DESCRIPTIONS
except ImportError:
    from benchmarks import benchmark_data, common
    from benchmarks.zero_shot import DESCRIPTIONS

import headstart
from headstart.data.dataset import Dataset, text_hash

SETS = {"sst2": ("sst2_train.csv", "sst2_test.csv"), "trec": ("trec_train.csv", "trec_test.csv")}
PER_CLASS = {"sst2": (10, 25, 50, 100), "trec": (4, 8, 16, 32)}
VARIANTS = ("no prior", "names", "described")


def read(name: str) -> Dataset:
    """A text CSV of the shared data as a labeled Dataset."""
    with open(benchmark_data.text_data_dir() / name, newline="", encoding="utf-8") as handle:
        rows = [(row["text"], row["label"]) for row in csv.DictReader(handle)]
    return Dataset("text", [text for text, _ in rows], [text_hash(text) for text, _ in rows],
                   labels=[label for _, label in rows], source=name)


def one_fit(train: Dataset, test: Dataset, variant: str, mode: str, describe: dict, seed: int) -> dict:
    """One fit of ``variant`` and what it scored."""
    started = time.perf_counter()
    model = headstart.fit(train, test=test, mode=mode, baseline=False, seed=seed,
                          zero_shot_prior=variant != "no prior", describe=describe if variant == "described" else None)
    blend = model.info["config"].get("probe", {}).get("zero_shot_prior") or {}
    return {"accuracy": model.metrics["accuracy"], "probe_weight": blend.get("probe_weight"),
            "kept": model.info["config"]["mode"], "seconds": time.perf_counter() - started}


def summary(rows: list[dict]) -> list[dict]:
    """Mean and spread of each (set, mode, labels a class, variant), variants side by side."""
    table = []
    for key in sorted({(r["set"], r["mode"], r["per_class"]) for r in rows}):
        line = {"set": key[0], "mode": key[1], "per class": key[2]}
        for variant in VARIANTS:
            picked = [r for r in rows if (r["set"], r["mode"], r["per_class"]) == key and r["variant"] == variant]
            mean, std = common.mean_std([r["accuracy"] for r in picked])
            line[variant] = None if mean is None else f"{mean:.3f} ± {std:.3f} ({len(picked)})"
            weights = [r["probe_weight"] for r in picked if r["probe_weight"] is not None]
            if variant != "no prior" and weights:
                line[f"share {variant}"] = f"{sum(weights) / len(weights):.2f}"
        table.append(line)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="sst2,trec")
    parser.add_argument("--modes", default="probe", help="comma-separated: probe, auto")
    parser.add_argument("--per-class", action="append", default=[],
                        help="SET=N,N,...: labels a class for one set (default: " +
                             "; ".join(f"{k}={','.join(map(str, v))}" for k, v in PER_CLASS.items()) + ")")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    budgets = {**PER_CLASS, **{s.split("=")[0]: tuple(int(n) for n in s.split("=")[1].split(","))
                               for s in args.per_class}}
    rows = []
    for name in args.sets.split(","):
        pool, test = (read(file) for file in SETS[name])
        for mode in args.modes.split(","):
            for per_class in budgets[name]:
                for seed in range(args.seeds):
                    train = pool.subset(common.sample_per_class(pool.labels, per_class, seed))
                    for variant in VARIANTS:
                        rows.append({"set": name, "mode": mode, "per_class": per_class, "seed": seed,
                                     "variant": variant,
                                     **one_fit(train, test, variant, mode, DESCRIPTIONS[name], seed)})
                        print(f"{name} {mode} {per_class} a class, seed {seed}, {variant}: "
                              f"{rows[-1]['accuracy']:.4f} (share {rows[-1]['probe_weight']}, "
                              f"kept {rows[-1]['kept']}, {rows[-1]['seconds']:.0f} s)", flush=True)
                    path = common.write_results("zero_shot_prior", {
                        "backbone": "minilm-l6", "descriptions": {k: DESCRIPTIONS[k] for k in SETS},
                        "rows": rows, "summary": summary(rows), "load": os.getloadavg(), "machine":
                        common.machine_info(), "notes": "test accuracy of headstart.fit on random labels drawn per "
                        "class, with and without the class names' zero-shot prior; nothing timed but seconds"})
    table = summary(rows)
    common.print_table(table, list(dict.fromkeys(k for line in table for k in line)),
                       title="test accuracy, mean ± sd (seeds); share: the probe's in the blend")
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
