"""Self-training for the fine-tune: the loop's labels plus the loop probe's confident pool pseudo-labels.

At a budget, on the labels headstart's labeling loop chose (the ``orders`` of a ``label_budget.py``
result), the loop's probe (trained on the pool, as a project's retrain) labels the pool; the
``--per-class`` most confident items it predicts for each class join the labels, and
``headstart.fit(..., mode="finetune")`` tunes the backbone on both (Xie et al. 2020, "Self-training
with noisy student": the student learns the teacher's labels with the fine-tune's augmentation). The
fit's validation items are drawn from the real labels only. Printed and saved per seed: the loop
probe's test accuracy, the pseudo-labels' precision, the fine-tune's, and the average of the two
models' probabilities. A question for issue 21 item 4, not a shipped method: CPU-heavy, run it alone.

    .venv/bin/python benchmarks/pseudo_label_finetune.py --seeds 0 --budget 200 --per-class 200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import label_budget  # noqa: E402


def confident_per_class(proba: np.ndarray, exclude: np.ndarray, per_class: int) -> np.ndarray:
    """Positions of the ``per_class`` most confident pool items predicted as each class, ``exclude`` left out."""
    from headstart.learn.pseudo_labels import confident_items

    rest = np.setdiff1d(np.arange(len(proba)), exclude)
    return rest[confident_items(proba[rest], 1.0, per_class)[0]]


def one_seed(data, order, seed: int, budget: int, per_class: int, epochs: int | None = None) -> dict:
    import headstart
    from headstart.data import Dataset
    from headstart.learn.config import FinetuneConfig

    items, labeled = data.items, np.asarray(order[:budget])
    probe = label_budget.loop_retrain(data, labeled, seed)
    test_proba, pool_proba = probe.proba(data.x_test), probe.proba(data.x)
    pseudo = confident_per_class(pool_proba, labeled, per_class)
    positions = np.concatenate([labeled, pseudo])
    classes = np.concatenate([data.y[labeled], pool_proba[pseudo].argmax(1)]).astype(int)
    splits = ["train"] * len(positions)  # validation from the real labels only: a fifth, at least 10
    for i in np.random.default_rng(seed).choice(len(labeled), size=max(10, len(labeled) // 5), replace=False):
        splits[i] = "val"
    train = Dataset(items.modality, [items.pool[i] for i in positions], [items.pool_hashes[i] for i in positions],
                    labels=[items.classes[c] for c in classes], source=f"{data.name} labels + pseudo-labels",
                    splits=splits)
    test = Dataset(items.modality, items.test, items.test_hashes, labels=[items.classes[c] for c in data.y_test],
                   source=f"{data.name} test")
    started, cpu = time.perf_counter(), time.process_time()
    model = headstart.fit(train, test=test, backbone=data.backbone, mode="finetune", seed=seed, baseline=False,
                          finetune_config=FinetuneConfig(epochs=epochs))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - started
    tuned = model.predict_proba(test)[:, [model.classes.index(c) for c in items.classes]]
    accuracy = lambda proba: float((proba.argmax(1) == data.y_test).mean())  # noqa: E731
    return {"seed": seed, "budget": budget, "per_class": per_class, "loop_probe": accuracy(test_proba),
            "epochs": model.info["config"]["finetune"]["epochs"], "pseudo_labels": len(pseudo), "pseudo_precision": float((data.y[pseudo] == pool_proba[pseudo].argmax(1)).mean()),
            "finetune": accuracy(tuned), "average": accuracy((tuned + test_proba) / 2),
            "fit_cpu_minutes": cpu / 60, "fit_wall_minutes": wall / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion", choices=["fashion", "sst2"])
    parser.add_argument("--orders", help="a label_budget.py result with the loop's orders "
                                         "(default: the newest results/label_budget-<dataset>-*.json)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds of the loop's orders")
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--per-class", type=int, default=200, help="pseudo-labels a class")
    parser.add_argument("--epochs", type=int, help="passes of the fine-tune (default: headstart's, from the data)")
    parser.add_argument("--name", default="pseudo_label_finetune", help="the results file's name before the date")
    args = parser.parse_args()
    orders_file = args.orders or sorted(common.RESULTS_DIR.glob(f"label_budget-{args.dataset}-2*.json"))[-1]
    orders = json.loads(Path(orders_file).read_text())["orders"]
    data = label_budget.Data(args.dataset, None, None)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        rows.append(one_seed(data, orders[str(seed)], seed, args.budget, args.per_class, args.epochs))
        common.print_table(rows, list(rows[0]), title=f"{args.dataset}, {args.budget} labels of the loop")
        path = common.write_results(args.name, {"dataset": args.dataset, "orders": str(orders_file), "rows": rows})
    print(f"written: {path}")


if __name__ == "__main__":
    main()
