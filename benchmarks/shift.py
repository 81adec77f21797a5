"""Adaptation to an unlabeled target: source-only against each ``--adapt`` method, ``auto`` and an oracle.

Pairs (source -> target):

- text, ``minilm-l6``: SST-2 -> CR (movie to product reviews), MR -> CR, CR -> SST-2;
- images, ``effnet-lite0`` at ``--image-size`` (default 32): Fashion-MNIST -> Fashion-MNIST shifted,
  each shift its own target: inverted, rotated 30 degrees, blurred (Gaussian, radius 1.5 px),
  low contrast (pixels * 0.35 + 64).

For each pair and seed, a source sample of ``--source-items`` (1,250 texts, 1,000 images;
stratified; 80% train, 20% validation, as ``headstart fit`` would split) is drawn with the seed; the
target is one sample of ``--target-items`` (1,000 texts, 500 images) per pair (drawn once, so that AdaBN's statistics, and the features under them,
are computed once a pair). The model is headstart's probe (``headstart.learn.trainer.train`` in
probe mode, refit on train+validation), and each method is ``headstart.adapt.adapt_model`` on it,
exactly what ``headstart fit SOURCE --target TARGET --adapt METHOD --mode probe`` runs; the
target's labels are read only to score (transductively: the unlabeled target is also the test set,
as in the domain-adaptation literature) and by the oracle, a probe trained on the labeled target
(5-fold out-of-fold accuracy, strength chosen by cross-validation on the target).

``shift AUC`` is the domain classifier's cross-validated AUC that ``auto`` computes
(``headstart.transfer.shift.domain_probabilities``); ``flagged`` is AUC >= 0.75.

Prints the table and the targets, and writes ``benchmarks/results/shift-<date>.json`` after every
pair (``partial`` until the last).

    python benchmarks/shift.py                          # everything: 7 pairs x 3 seeds
    python benchmarks/shift.py --pairs sst2-cr --seeds 1
    python benchmarks/shift.py --quick                  # 300 source / 200 target items, 1 seed
    python benchmarks/shift.py --combine results/shift-text-<date>.json results/shift-images-<date>.json
                                                        # one table and shift-<date>.json from runs made apart
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

try:  # run as `python benchmarks/shift.py` or imported as `benchmarks.shift`
    import benchmark_data
    import common
except ImportError:
    from benchmarks import benchmark_data, common

METHODS = ("coral", "adabn", "prior", "self-train", "coral-self-train", "auto")
TEXT_PAIRS = {"sst2-cr": ("sst2_train.csv", "cr.csv"), "mr-cr": ("mr.csv", "cr.csv"),
              "cr-sst2": ("cr.csv", "sst2_test.csv")}
IMAGE_SHIFTS = ("inverted", "rotated30", "blurred", "low-contrast")
PAIRS = (*TEXT_PAIRS, *(f"fmnist-{shift}" for shift in IMAGE_SHIFTS))
FLAG_AUC = 0.75
CACHE = common.BENCH_DIR / ".cache" / "shift"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default=",".join(PAIRS), help="(default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--source-items", type=int, help="source items a seed (default: 1,250 texts, 1,000 images)")
    parser.add_argument("--target-items", type=int, help="target items a pair (default: 1,000 texts, 500 images)")
    parser.add_argument("--image-size", type=int, default=32, help="effnet-lite0's input side (default: %(default)s: "
                        "Fashion-MNIST's images are 28 px; larger sizes cost 4x a doubling on a busy CPU)")
    parser.add_argument("--methods", default=",".join(METHODS), help="(default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small samples, 1 seed")
    parser.add_argument("--negative-transfer", action="store_true",
                        help="also run benchmarks/negative_transfer.py's cases (auto must ship scratch there)")
    parser.add_argument("--name", default="shift", help="results file name (default: %(default)s)")
    parser.add_argument("--combine", nargs="+", type=Path, help="results files of runs made apart (other pairs, "
                        "run in parallel) to print and write as one")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.source_items, args.target_items, args.name = 1, 300, 200, f"{args.name}-quick"
    return args


# --------------------------------------------------------------------------- data

def _read_text(name: str) -> tuple[list[str], list[str]]:
    with open(benchmark_data.text_data_dir() / name, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def _shifted(image: np.ndarray, shift: str):
    """One 28x28 Fashion-MNIST image with ``shift`` applied, as a PIL image."""
    from PIL import Image, ImageFilter

    picture = Image.fromarray(image)
    if shift == "inverted":
        return Image.fromarray(255 - image)
    if shift == "rotated30":
        return picture.rotate(30, resample=Image.BILINEAR)
    if shift == "blurred":
        return picture.filter(ImageFilter.GaussianBlur(radius=1.5))
    if shift == "low-contrast":
        return Image.fromarray((image.astype(np.float64) * 0.35 + 64).astype(np.uint8))
    raise ValueError(shift)


def _shifted_pngs(shift: str, images: np.ndarray, labels: np.ndarray, indices) -> list[str]:
    paths = []
    for i in np.asarray(indices).tolist():
        path = benchmark_data.FASHION_PNG_DIR / f"test-{shift}" / benchmark_data.fashion_label(labels[i]) / f"{i}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{i}.{os.getpid()}.tmp.png")
            _shifted(images[i], shift).save(temporary)
            os.replace(temporary, path)
        paths.append(str(path))
    return paths


def _stratified(labels, n: int, seed: int) -> np.ndarray:
    """``n`` positions drawn with the classes' proportions (at least one a class), shuffled."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(labels))
    if n >= len(labels):
        return np.random.default_rng(seed).permutation(positions)
    chosen, _ = train_test_split(positions, train_size=n, stratify=np.asarray(labels), random_state=seed)
    return chosen


def sizes(pair: str, args) -> tuple[int, int]:
    """(source items a seed, target items) of ``pair``."""
    text = pair in TEXT_PAIRS
    return (args.source_items or (1250 if text else 1000)), (args.target_items or (1000 if text else 500))


def pair_data(pair: str, args) -> dict:
    """The pair's source pool (items, labels), its target sample (items, labels), modality and backbone."""
    n_source, n_target = sizes(pair, args)
    if pair in TEXT_PAIRS:
        source_file, target_file = TEXT_PAIRS[pair]
        source, target = _read_text(source_file), _read_text(target_file)
        keep = _stratified(target[1], n_target, seed=12345)
        return {"modality": "text", "backbone": "minilm-l6", "options": {}, "source": source,
                "target": ([target[0][i] for i in keep], [target[1][i] for i in keep])}
    shift = pair.removeprefix("fmnist-")
    train_images, train_labels = benchmark_data.fashion_mnist("train")
    test_images, test_labels = benchmark_data.fashion_mnist("test")
    pool = _stratified(train_labels, 4 * n_source, seed=12345)  # the seeds draw from this pool
    keep = _stratified(test_labels, n_target, seed=12345)
    return {"modality": "image", "backbone": "effnet-lite0", "options": {"image_size": args.image_size},
            "source": (benchmark_data.fashion_pngs("train", train_images, train_labels, pool),
                       [benchmark_data.FASHION_CLASSES[train_labels[i]] for i in pool]),
            "target": (_shifted_pngs(shift, test_images, test_labels, keep),
                       [benchmark_data.FASHION_CLASSES[test_labels[i]] for i in keep])}


def _dataset(modality: str, items: list[str], labels: list[str] | None, splits=None, source: str = ""):
    from headstart.data.dataset import Dataset, file_hash, text_hash

    hashes = [text_hash(x) if modality == "text" else file_hash(x) for x in items]
    return Dataset(modality, list(items), hashes, labels=labels, splits=splits, source=source)


# --------------------------------------------------------------------------- one pair

def oracle_accuracy(features: np.ndarray, labels: np.ndarray, n_classes: int, seed: int = 0) -> float:
    """5-fold out-of-fold accuracy of a probe trained on the labeled target (strength by cross-validation)."""
    from headstart.learn.head import fit_head, out_of_fold_proba
    from headstart.learn.probe import fit_probe

    _, info = fit_probe(features, labels, features[:0], labels[:0], n_classes, seed=seed)
    fit = partial(fit_head, n_classes=n_classes, c=info["C"], seed=seed)
    proba = out_of_fold_proba(features, labels, n_classes, fit, folds=5, seed=seed)
    return float((proba.argmax(1) == labels).mean())


def run_pair(pair: str, args, on_seed=None) -> dict:
    from headstart.adapt import adapt_model
    from headstart.adapt.adabn import has_batch_norm
    from headstart.backbones import create_backbone
    from headstart.learn.trainer import train
    from headstart.model import Model

    data = pair_data(pair, args)
    modality = data["modality"]
    backbone = create_backbone(data["backbone"], **data["options"])
    pretrained_state = copy.deepcopy(backbone.module.state_dict())
    target_items, target_labels = data["target"]
    target = _dataset(modality, target_items, None, source=f"{pair} target")
    classes = sorted(set(data["source"][1]))
    target_y = np.array([classes.index(label) for label in target_labels])
    methods = [m for m in args.methods.split(",") if m != "adabn" or has_batch_norm(backbone)]
    runs = []
    for seed in range(args.seeds):
        items, labels = data["source"]
        chosen = _stratified(labels, sizes(pair, args)[0], seed=seed)
        n_train = int(round(0.8 * len(chosen)))
        splits = ["train"] * n_train + ["val"] * (len(chosen) - n_train)
        source = _dataset(modality, [items[i] for i in chosen], [labels[i] for i in chosen], splits)
        train_set, val_set = source.split("train"), source.split("val")
        started = time.perf_counter()
        result = train(backbone, train_set, val_set, classes, mode="probe", seed=seed, cache_dir=CACHE)
        c = result.config["probe"]["C"]
        plain = Model(backbone, result.head, classes, backbone_options=dict(data["options"]))
        row = {"pair": pair, "seed": seed, "C": c,
               "source-only": _accuracy(plain, target, target_y)}
        for method in methods:
            model = Model(backbone, result.head, classes, backbone_options=dict(data["options"]))
            record = adapt_model(model, train_set, val_set, target, method=method, c=c, seed=seed, cache_dir=CACHE)
            row[method] = _accuracy(model, target, target_y)
            if method == "auto":
                row["auto_method"], row["auto_reason"] = record["method"], record["reason"]
                row["scores"] = record["scores"]
                row["shift_auc"] = record["domain_auc"]
                if record["method"] == "prior":
                    row["target_priors"] = record.get("target_priors")
            backbone.module.load_state_dict(pretrained_state)  # AdaBN changed it
            backbone.mirror = True
        row["seconds"] = time.perf_counter() - started
        print(f"  {pair} seed {seed}: " + "  ".join(f"{k} {row[k]:.4f}" for k in ("source-only", *methods))
              + f"  (auto chose {row['auto_method']}; shift AUC {row['shift_auc']:.3f})", flush=True)
        runs.append(row)
        if on_seed is not None:  # a slow run leaves every finished seed behind
            on_seed({"pair": pair, "methods": methods, "runs": runs, "oracle": None})
    target_x = Model(backbone, result.head, classes).features(
        _dataset(modality, target_items, None), cache_dir=CACHE)
    oracle = oracle_accuracy(target_x, target_y, len(classes))
    return {"pair": pair, "methods": methods, "runs": runs, "oracle": oracle}


def _accuracy(model, dataset, truth: np.ndarray) -> float:
    return float((model.predict_proba(dataset, cache_dir=CACHE).argmax(1) == truth).mean())


# --------------------------------------------------------------------------- summary

def summarize(result: dict) -> dict:
    runs = result["runs"]
    mean = lambda key: float(np.mean([r[key] for r in runs]))  # noqa: E731
    row = {"pair": result["pair"], "source-only": mean("source-only"),
           **{m: mean(m) for m in result["methods"]}, "oracle": result["oracle"], "seeds": len(runs),
           "auto chose": ",".join(r["auto_method"] for r in runs),
           "shift AUC": mean("shift_auc")}
    row["auto gain"] = row["auto"] - row["source-only"]
    row["flagged"] = "yes" if row["shift AUC"] >= FLAG_AUC else "no"
    return row


def targets(summary: list[dict]) -> list[dict]:
    gains = [row["auto gain"] for row in summary]
    return [
        common.target("pairs where auto gains >= 2 points over source-only", sum(g >= 0.02 for g in gains), ">=",
                      len(gains) / 2),
        common.target("worst auto gain over source-only (points)", 100 * min(gains), ">=", -0.5),
        common.target(f"pairs the shift AUC flags (>= {FLAG_AUC})", sum(r["flagged"] == "yes" for r in summary),
                      ">=", len(summary)),
    ]


COLUMNS = ["pair", "seeds", "source-only", *METHODS, "oracle", "auto gain", "auto chose", "shift AUC", "flagged"]


def combine(paths: list[Path], name: str) -> None:
    """Print and write (``<name>-<date>.json``) the pairs of several results files as one run."""
    import json

    documents = [json.loads(path.read_text()) for path in paths]
    results = [result for document in documents for result in document["results"]]
    summary = [summarize(result) for result in results]
    settings = {str(path.name): document["settings"] for path, document in zip(paths, documents)}
    seeds = max(len(result["runs"]) for result in results)  # a file's later pairs, cut short, are not given
    path = common.write_results(name, {"partial": any(len(r["runs"]) < seeds for r in results), "settings": settings,
                                       "results": results, "summary": summary, "targets": targets(summary)})
    common.print_table(summary, COLUMNS, title="Accuracy on the target (mean over seeds)")
    common.print_targets(targets(summary))
    print(f"\nwritten: {path}")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.combine:
        return combine(args.combine, args.name)
    os.environ.setdefault("HEADSTART_QUIET", "1")
    for key, value in common.QUIET_ENV.items():
        os.environ.setdefault(key, value)
    import torch

    torch.set_num_threads(common.THREADS)
    results, summary = [], []
    for pair in args.pairs.split(","):
        print(f"{pair} ...", flush=True)

        def seed_done(partial_result):
            done = [*results, partial_result]
            common.write_results(args.name, {"partial": True, "settings": vars(args), "results": done,
                                             "summary": [summarize(r) for r in done]})

        results.append(run_pair(pair, args, on_seed=seed_done))
        summary.append(summarize(results[-1]))
        last = pair == args.pairs.split(",")[-1]
        payload = {"partial": not last, "settings": vars(args), "results": results, "summary": summary}
        if last:
            payload["targets"] = targets(summary)
        path = common.write_results(args.name, payload)
    common.print_table(summary, COLUMNS, title="Accuracy on the target (mean over seeds)")
    common.print_targets(targets(summary))
    if args.negative_transfer:  # issue 20's negative-transfer case: does fit(mode="auto") ship scratch?
        import negative_transfer

        rows = negative_transfer.run(range(args.seeds), finetune_strategy="staged", finetune_epochs=1)
        negative_transfer.print_rows(rows)
        path = common.write_results(args.name, {**payload, "negative_transfer": rows})
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    sys.exit(main())
