"""Negative transfer: tiny gray digits, where a pretrained backbone should lose to models from scratch.

scikit-learn's ``load_digits`` (1,797 scans of handwritten digits, 8x8 pixels, 17 gray levels; Alpaydin
& Kaynak 1998) written once as 8-bit gray PNGs under ``benchmarks/.cache/digits/`` (gitignored). Each
seed draws 10 images a class for training and 10 a class for validation (the issue's "10 labels a
class"), and tests on ``--test-items`` of the rest. For each seed:

- ``headstart.fit(mode=...)`` with ``effnet-lite0`` (``mirror=False``: a mirrored digit is another
  figure): the transfer model's test accuracy, the scratch candidate it chose on validation, the
  model it shipped and that model's test accuracy, the validation and test differences with their
  intervals, and the scratch candidates' seconds against their budget;
- every scratch candidate (pixel logistic regression, MLP, small CNN) fitted on the same splits
  and scored on the same test items, so the choice can be judged.

Prints a row a seed and the means, and writes ``benchmarks/results/negative_transfer-<date>.json``.
``run(seeds)`` gives the rows to other scripts (``benchmarks/shift.py``).

    python benchmarks/negative_transfer.py                       # 3 seeds, mode auto
    python benchmarks/negative_transfer.py --seeds 1 --test-items 200 --finetune-epochs 3   # a small run
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np

try:  # run as `python benchmarks/negative_transfer.py` or imported as `benchmarks.negative_transfer`
    import common
except ImportError:
    from benchmarks import common

BACKBONE = "effnet-lite0"
DIGITS_DIR = common.BENCH_DIR / ".cache" / "digits"


def digit_pngs() -> tuple[list[str], np.ndarray]:
    """(paths, labels) of load_digits as gray PNGs, written on first use."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    DIGITS_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(digits.images):
        path = DIGITS_DIR / f"{i:04d}.png"
        if not path.is_file():
            Image.fromarray(np.round(image * 255 / 16).astype(np.uint8), "L").save(path)
        paths.append(str(path))
    return paths, digits.target


def split_rows(labels: np.ndarray, seed: int, per_class: int, val_per_class: int, test_items: int) -> list:
    """[(index, split)]: ``per_class`` train and ``val_per_class`` validation items a class, then test items."""
    picked = common.sample_per_class(labels, per_class + val_per_class, seed)
    seen: dict[int, int] = {}
    rows = []
    for i in picked:
        n = seen.get(labels[i], 0)
        seen[labels[i]] = n + 1
        rows.append((int(i), "train" if n < per_class else "val"))
    rest = np.setdiff1d(np.arange(len(labels)), picked)
    test = np.random.default_rng(seed + 1000).permutation(rest)[:test_items]
    return rows + [(int(i), "test") for i in test]


def candidate_accuracies(dataset, seed: int) -> dict:
    """Test accuracy of every image scratch candidate fitted on the dataset's train and val splits."""
    from headstart.transfer.baseline import IMAGE_CANDIDATES
    from headstart.transfer.scratch_models import Task

    train, val, test = (dataset.split(name) for name in ("train", "val", "test"))
    classes = train.classes
    task = Task(train.items, train.label_ids(classes), val.items, val.label_ids(classes), len(classes), seed,
                mirror=False)
    truth = test.label_ids(classes)
    return {name: float((fit(task).predictor.predict_proba(test.items).argmax(1) == truth).mean())
            for name, fit, _ in IMAGE_CANDIDATES}


def run(seeds=(0, 1, 2), *, mode: str = "auto", per_class: int = 10, val_per_class: int = 10,
        test_items: int = 1000, image_size: int | None = None, finetune_epochs: int | None = None,
        backbone: str = BACKBONE) -> list[dict]:
    """One row a seed: transfer, each scratch candidate and what ``fit(mode)`` shipped, on the same test items."""
    import headstart

    paths, labels = digit_pngs()
    rows = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as folder:
            data = Path(folder) / "digits.csv"
            with open(data, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["path", "label", "split"])
                for i, split in split_rows(labels, seed, per_class, val_per_class, test_items):
                    writer.writerow([paths[i], str(labels[i]), split])
            config = headstart.FinetuneConfig(epochs=finetune_epochs)
            model = headstart.fit(data, backbone=backbone, mode=mode, seed=seed, mirror=False, image_size=image_size,
                                  finetune_config=config, cache_dir=Path(folder) / "cache")
            dataset = headstart.prepare(data)
            candidates = candidate_accuracies(dataset, seed)
        baseline = model.metrics["baseline"]
        validation = baseline.get("validation") or {}
        rows.append({"seed": seed, "mode": mode, "transfer": baseline["transfer_accuracy"],
                     **{f"scratch {name}": accuracy for name, accuracy in candidates.items()},
                     "chosen": baseline["name"], "shipped": baseline["shipped"],
                     "shipped accuracy": model.metrics["accuracy"],
                     "test diff": baseline["difference"], "test ci": [baseline["ci_low"], baseline["ci_high"]],
                     "val scratch": validation.get("scratch"), "val transfer": validation.get("transfer"),
                     "val ci": [validation.get("ci_low"), validation.get("ci_high")],
                     "scratch s": baseline["seconds"], "budget s": baseline["budget_s"],
                     "share of fit": baseline["share_of_fit"], "candidates": baseline["candidates"],
                     "verdict": baseline["verdict"], "test items": baseline["n"]})
        print(f"seed {seed}: {baseline['verdict']}", flush=True)
    return rows


COLUMNS = ["seed", "transfer", "scratch pixel-lr", "scratch mlp", "scratch cnn", "chosen", "shipped",
           "shipped accuracy", "val scratch", "val transfer", "scratch s", "budget s"]


def main(argv=None) -> None:
    """Parse the options, run, print the table and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0.. (default: %(default)s)")
    parser.add_argument("--mode", default="auto", help="fit's mode (default: %(default)s)")
    parser.add_argument("--test-items", type=int, default=1000, help="test items a seed (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=None, help="backbone input side (default: its own)")
    parser.add_argument("--finetune-epochs", type=int, default=None, help="fine-tuning epochs (default: fit's)")
    args = parser.parse_args(argv)
    rows = run(tuple(range(args.seeds)), mode=args.mode, test_items=args.test_items, image_size=args.image_size,
               finetune_epochs=args.finetune_epochs)
    common.print_table(rows, COLUMNS, title=f"Negative transfer: load_digits 8x8, 10 labels a class, {BACKBONE}, "
                                            f"mode {args.mode}")
    means = {column: float(np.mean([row[column] for row in rows])) for column in COLUMNS
             if all(isinstance(row[column], (int, float)) for row in rows) and column != "seed"}
    common.print_table([means], list(means), title="Means over seeds")
    shipped_scratch = sum(row["shipped"] == "scratch" for row in rows)
    print(f"\nauto shipped the model from scratch in {shipped_scratch} of {len(rows)} seeds")
    path = common.write_results("negative_transfer", {
        "data": "sklearn load_digits 8x8 gray, 10 train + 10 validation a class", "backbone": BACKBONE,
        "args": vars(args), "rows": rows, "means": means, "shipped_scratch": shipped_scratch})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
