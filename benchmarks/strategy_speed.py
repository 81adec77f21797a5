"""How long each active-learning strategy takes to choose a batch from a large pool of cached features.

Random features stand in for cached ones (the strategies only see arrays): a pool of 100,000 items
of 384 dimensions (minilm-l6's width), 10 classes, 1,000 of them labeled, a batch of 20. Each
strategy runs ``--repeats`` times after one warm-up call; the table gives the median and the
slowest seconds. The target (issue 4): under a second. Then the same through the labeling
project (``LabelingProject.next``: a SQLite store of the whole pool, its labels and the newest
probe, features held in memory as after the cache's first read): the store reads included.
Not a test: timings depend on the machine.

    python benchmarks/strategy_speed.py
    python benchmarks/strategy_speed.py --pool 10000 --repeats 3      # quick look
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

try:
    import common
except ImportError:
    from benchmarks import common

from headstart.labeling.strategies import STRATEGIES, select


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--labeled", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    features = rng.standard_normal((args.pool, args.dim)).astype(np.float32)
    logits = rng.standard_normal((args.pool, args.classes)).astype(np.float32) * 2
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    labeled = np.zeros(args.pool, dtype=bool)
    labeled[rng.choice(args.pool, args.labeled, replace=False)] = True
    labels = np.where(labeled, rng.integers(0, args.classes, args.pool), -1)

    rows = []
    for name in (*STRATEGIES, "cold start"):
        def run(seed):
            if name == "cold start":
                return select("margin", args.batch, features=features, seed=seed)
            return select(name, args.batch, proba=proba, features=features, labeled=labeled, labels=labels,
                          seed=seed)
        run(0)  # warm-up: thread pools, first-touch pages
        seconds = []
        for seed in range(args.repeats):
            start = time.perf_counter()
            picked = run(seed + 1)
            seconds.append(time.perf_counter() - start)
            assert len(picked) == args.batch
        rows.append({"strategy": name, "median s": float(np.median(seconds)), "max s": float(np.max(seconds)),
                     "under 1 s": "yes" if max(seconds) < 1.0 else "NO"})
    common.print_table(rows, ["strategy", "median s", "max s", "under 1 s"],
                       title=f"choosing {args.batch} of {args.pool:,} items ({args.dim} dims, {args.classes} classes, "
                             f"{args.labeled:,} labeled)")
    project_rows = project_timings(features, labels, args)
    common.print_table(project_rows, ["strategy", "median s", "max s", "under 1 s"],
                       title=f"LabelingProject.next({args.batch}) on a SQLite store of {args.pool:,} items")
    path = common.write_results("strategy_speed", {"config": vars(args), "rows": rows, "project_rows": project_rows})
    print(f"\nwrote {path}")
    return 0


def project_timings(features: np.ndarray, labels: np.ndarray, args) -> list[dict]:
    """``LabelingProject.next`` end to end: store reads, the newest probe's probabilities, the strategy."""
    import tempfile
    from pathlib import Path

    from headstart.labeling import init_project
    from headstart.labeling.project import LabelingProject
    from headstart.labeling.retrain import retrain_probe

    classes = [f"c{k}" for k in range(args.classes)]
    with tempfile.TemporaryDirectory(prefix="headstart-speed-") as folder:
        pool = Path(folder) / "pool.csv"
        with open(pool, "w", encoding="utf-8") as handle:
            handle.write("id,text\n" + "".join(f"i{i},item {i}\n" for i in range(len(features))))
        store = init_project(pool, labels=classes, db=Path(folder) / "labels.db", backbone="minilm-l6").store
        labeled = np.flatnonzero(labels >= 0)
        store.add_labels([(f"i{i}", classes[labels[i]], "bench") for i in labeled], source="person")
        retrain_probe(LabelingProject(store, features=features))
        rows = []
        for name in ("default", "margin", "kcenter", "badge"):
            seconds = []
            for seed in range(args.repeats):
                project = LabelingProject(store, features=features)  # a fresh object reads the store again
                start = time.perf_counter()
                batch = project.next(args.batch, strategy=name, seed=seed)
                seconds.append(time.perf_counter() - start)
                assert len(batch) == args.batch
            rows.append({"strategy": name, "median s": float(np.median(seconds)), "max s": float(np.max(seconds)),
                         "under 1 s": "yes" if max(seconds) < 1.0 else "NO"})
        store.close()
    return rows


if __name__ == "__main__":
    sys.exit(main())
