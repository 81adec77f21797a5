"""Negative transfer: where a pretrained backbone should lose to models from scratch, and what ``auto`` ships.

Two cases, 10 labels a class for training and 10 a class for validation (the issue's "10 labels a
class"), tested on ``--test-items`` others:

- ``digits``: scikit-learn's ``load_digits`` (1,797 scans of handwritten digits, 8x8 pixels, 17 gray
  levels; Alpaydin & Kaynak 1998), written once as 8-bit gray PNGs under ``benchmarks/.cache/digits/``
  (gitignored), with ``effnet-lite0`` (``mirror=False``: a mirrored digit is another figure): tiny
  low-resolution images, where logistic regression on the pixels is strong;
- ``shouting``: SST-2 training sentences, each written in capitals ("shouted") or left as it is
  ("plain") at random, with ``minilm-l6``: a label that the backbone's uncased tokenizer discards
  before the network sees the text, and that character n-grams keeping case see at once.

For each case and seed: ``headstart.fit(mode=...)``: the transfer model's test accuracy, the scratch
candidate chosen on validation, the model shipped and its test accuracy, the validation figures
behind the choice, and the candidates' seconds against their budget; and every scratch candidate
fitted on the same splits and scored on the same test items, so the choice can be judged.

Prints a row a case and seed and the means, and writes ``benchmarks/results/negative_transfer-<date>.json``.
``run(seeds)`` gives the rows to other scripts (``benchmarks/shift.py``).

    python benchmarks/negative_transfer.py                       # 3 seeds, both cases, mode auto
    python benchmarks/negative_transfer.py --seeds 1 --test-items 200 --finetune-epochs 1 --finetune-strategy staged
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np

try:  # run as `python benchmarks/negative_transfer.py` or imported as `benchmarks.negative_transfer`
    import benchmark_data
    import common
except ImportError:
    from benchmarks import benchmark_data, common

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


def shouting_rows(seed: int, per_class: int, val_per_class: int, test_items: int) -> list:
    """[(text, label, split)]: SST-2 sentences, each shouted (in capitals) or plain at random."""
    texts, _ = benchmark_data.sst2("train")
    rng = np.random.default_rng(seed)
    picked = rng.permutation(len(texts))[:4 * (per_class + val_per_class) + test_items]
    labels = np.where(rng.random(len(picked)) < 0.5, "shouted", "plain")
    order = split_rows(labels, seed, per_class, val_per_class, test_items)
    return [(texts[picked[i]].upper() if labels[i] == "shouted" else texts[picked[i]], labels[i], split)
            for i, split in order]


def digits_rows(seed: int, per_class: int, val_per_class: int, test_items: int) -> list:
    """[(png path, digit, split)] of load_digits."""
    paths, labels = digit_pngs()
    return [(paths[i], str(labels[i]), split)
            for i, split in split_rows(labels, seed, per_class, val_per_class, test_items)]


CASES = {"digits": (digits_rows, "effnet-lite0", "path", {"mirror": False}),
         "shouting": (shouting_rows, "minilm-l6", "text", {})}


def candidate_accuracies(dataset, seed: int, mirror: bool) -> dict:
    """Test accuracy of every scratch candidate of the modality, fitted on the dataset's train and val splits."""
    from headstart.transfer.baseline import IMAGE_CANDIDATES, TEXT_CANDIDATES
    from headstart.transfer.scratch_models import Task

    train, val, test = (dataset.split(name) for name in ("train", "val", "test"))
    classes = train.classes
    task = Task(train.items, train.label_ids(classes), val.items, val.label_ids(classes), len(classes), seed,
                mirror=mirror)
    truth = test.label_ids(classes)
    candidates = TEXT_CANDIDATES if dataset.modality == "text" else IMAGE_CANDIDATES
    return {name: float((fit(task).predictor.predict_proba(test.items).argmax(1) == truth).mean())
            for name, fit, _ in candidates}


def run(seeds=(0, 1, 2), *, cases=tuple(CASES), mode: str = "auto", per_class: int = 10, val_per_class: int = 10,
        test_items: int = 1000, finetune_epochs: int | None = None, finetune_strategy: str = "auto") -> list[dict]:
    """One row a case and seed: transfer, each scratch candidate and what ``fit(mode)`` shipped, on the same test items."""
    import headstart

    rows = []
    for case in cases:
        make_rows, backbone, column, options = CASES[case]
        for seed in seeds:
            with tempfile.TemporaryDirectory() as folder:
                data = Path(folder) / f"{case}.csv"
                with open(data, "w", newline="", encoding="utf-8") as handle:
                    writer = csv.writer(handle)
                    writer.writerow([column, "label", "split"])
                    writer.writerows(make_rows(seed, per_class, val_per_class, test_items))
                model = headstart.fit(data, backbone=backbone, mode=mode, seed=seed,
                                      finetune_config=headstart.FinetuneConfig(epochs=finetune_epochs,
                                                                               strategy=finetune_strategy),
                                      cache_dir=Path(folder) / "cache", **options)
                candidates = candidate_accuracies(headstart.prepare(data), seed, options.get("mirror", True))
            baseline = model.metrics["baseline"]
            validation = baseline.get("validation") or {}
            rows.append({"case": case, "seed": seed, "backbone": backbone, "mode": mode,
                         "transfer": baseline["transfer_accuracy"],
                         **{f"scratch {name}": accuracy for name, accuracy in candidates.items()},
                         "chosen": baseline["name"], "shipped": baseline["shipped"],
                         "shipped accuracy": model.metrics["accuracy"],
                         "test diff": baseline["difference"], "test ci": [baseline["ci_low"], baseline["ci_high"]],
                         "val scratch": validation.get("scratch"), "val transfer": validation.get("transfer"),
                         "val ci": [validation.get("ci_low"), validation.get("ci_high")],
                         "scratch s": baseline["seconds"], "budget s": baseline["budget_s"],
                         "share of fit": baseline["share_of_fit"], "candidates": baseline["candidates"],
                         "verdict": baseline["verdict"], "test items": baseline["n"]})
            print(f"{case} seed {seed}: {baseline['verdict']}", flush=True)
    return rows


COLUMNS = ["case", "seed", "transfer", "scratch pixel-lr", "scratch mlp", "scratch cnn", "scratch tfidf-words-chars",
           "chosen", "shipped", "shipped accuracy", "val scratch", "val transfer", "scratch s", "budget s"]
MEANS = ["transfer", "shipped accuracy", "val scratch", "val transfer", "scratch s", "budget s"]


def print_rows(rows: list[dict], mode: str = "auto") -> list[dict]:
    """Print the rows and their means over seeds a case (how often scratch was shipped); return the means."""
    common.print_table(rows, COLUMNS, title=f"Negative transfer, 10 labels a class, mode {mode}")
    means = []
    for case in dict.fromkeys(row["case"] for row in rows):
        mine = [row for row in rows if row["case"] == case]
        means.append({"case": case, "shipped scratch": f"{sum(r['shipped'] == 'scratch' for r in mine)}/{len(mine)}",
                      **{k: float(np.mean([r[k] for r in mine])) for k in MEANS + [c for c in COLUMNS if
                         c.startswith("scratch ") and all(c in r for r in mine)]}})
    common.print_table(means, list(dict.fromkeys(k for row in means for k in row)), title="Means over seeds")
    return means


def main(argv=None) -> None:
    """Parse the options, run, print the tables and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0.. (default: %(default)s)")
    parser.add_argument("--cases", default=",".join(CASES), help="of " + ",".join(CASES) + " (default: all)")
    parser.add_argument("--mode", default="auto", help="fit's mode (default: %(default)s)")
    parser.add_argument("--test-items", type=int, default=1000, help="test items a seed (default: %(default)s)")
    parser.add_argument("--finetune-epochs", type=int, default=None, help="fine-tuning epochs (default: fit's)")
    parser.add_argument("--finetune-strategy", default="auto", help="staged | contrastive | auto (default: fit's auto; "
                                                                   "contrastive tuning of few texts is slow on a CPU)")
    args = parser.parse_args(argv)
    rows = run(tuple(range(args.seeds)), cases=tuple(args.cases.split(",")), mode=args.mode,
               test_items=args.test_items, finetune_epochs=args.finetune_epochs,
               finetune_strategy=args.finetune_strategy)
    means = print_rows(rows, args.mode)
    path = common.write_results("negative_transfer", {
        "cases": {case: CASES[case][1] for case in dict.fromkeys(row["case"] for row in rows)},
        "args": vars(args), "rows": rows, "means": means})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
