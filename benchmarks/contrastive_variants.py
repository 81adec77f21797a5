"""Contrastive tuning settings side by side: the tuning alone, then a probe, on sampled SST-2 texts.

Each variant is a set of ``FinetuneConfig`` fields (``pairing``, ``lr``, ``epochs`` or
``min_steps``, ``unfreeze``, ``pairs_per_item``; ``"unfreeze": null`` trains the word embeddings
too). For each size and seed it samples half the texts from each class (``common.sample_per_class``,
the samples of ``sst2.py``), tunes ``minilm-l6`` on all of them with
:func:`headstart.learn.contrastive.contrastive_tune`, fits scikit-learn's default logistic regression
on the tuned features and scores the 1,821 test sentences. No validation split, no judged run, no
feature cache: what it compares is the tuning itself, its seconds (wall and process CPU, two
threads) and the accuracy it buys. ``contrastive_speed.py`` times whole fits; ``sst2.py`` scores them.

    python benchmarks/contrastive_variants.py --sizes 100 --seeds 0,1,2 \\
        --variant 'sampled-40={"pairing": "sampled", "pairs_per_item": 40, "epochs": 1}' \\
        --variant 'in-batch-20={"pairing": "in_batch", "epochs": 20}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

try:  # run as `python benchmarks/contrastive_variants.py` or imported as `benchmarks.contrastive_variants`
    import benchmark_data
    import common
except ImportError:
    from benchmarks import benchmark_data, common


def embed(backbone, texts: list[str]) -> np.ndarray:
    """Features of ``texts`` under the backbone's current (tuned) weights, eager PyTorch."""
    import torch

    from headstart.learn.token_cache import TokenCache

    tokens = TokenCache(backbone, texts)
    order = np.argsort([len(ids) for ids in tokens.ids])
    out = np.zeros((len(texts), backbone.feature_dim), np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), 128):
            batch = order[start:start + 128]
            out[batch] = backbone.module(**tokens.batch(batch)).numpy()
    return out


def tuned_accuracy(size: int, seed: int, variant: dict, test: tuple[list[str], np.ndarray]) -> dict:
    """Tune on ``size`` sampled SST-2 texts with ``variant``, then a probe's test accuracy."""
    from sklearn.linear_model import LogisticRegression

    from headstart.backbones import create_backbone
    from headstart.learn.config import FinetuneConfig
    from headstart.learn.contrastive import contrastive_tune

    texts, labels = benchmark_data.sst2("train")
    index = common.sample_per_class(labels, size // 2, seed)
    train = [texts[i] for i in index]
    y = np.array([labels[i] == "positive" for i in index], dtype=int)
    backbone = create_backbone("minilm-l6")
    config = FinetuneConfig(strategy="contrastive", **variant).resolved(backbone, len(train), 2)
    if "unfreeze" in variant and variant["unfreeze"] is None:
        config.unfreeze = None  # every parameter, the word embeddings included
    wall, cpu = time.perf_counter(), time.process_time()
    history = contrastive_tune(backbone, train, y, config, seed=seed) if config.epochs > 0 else []
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    probe = LogisticRegression(max_iter=2000).fit(embed(backbone, train), y)
    accuracy = float((probe.predict(embed(backbone, test[0])) == test[1]).mean())
    return {"size": size, "seed": seed, "accuracy": accuracy, "tune_seconds": wall, "tune_cpu_seconds": cpu,
            "steps": sum(row["steps"] for row in history), "epochs": config.epochs}


def parse_variant(text: str) -> tuple[str, dict]:
    """``name={json}`` into (name, FinetuneConfig fields)."""
    name, _, fields = text.partition("=")
    try:
        return name, json.loads(fields)
    except json.JSONDecodeError as error:
        raise SystemExit(f"--variant {text!r}: the part after '=' is not JSON ({error})") from error


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100", help="training texts, half a class (default: %(default)s)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variant", action="append", required=True, help="name={FinetuneConfig fields as JSON}")
    parser.add_argument("--name", default="contrastive_variants")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(common.THREADS)
    test_texts, test_labels = benchmark_data.sst2_test()
    test = (test_texts, np.array([label == "positive" for label in test_labels], dtype=int))
    rows = []
    for name, variant in map(parse_variant, args.variant):
        for size in [int(s) for s in args.sizes.split(",")]:
            for seed in [int(s) for s in args.seeds.split(",")]:
                rows.append({"variant": name, "fields": variant, **tuned_accuracy(size, seed, variant, test)})
                print(json.dumps(rows[-1]), flush=True)
                common.write_results(args.name, {"backbone": "minilm-l6", "test_items": len(test_texts), "rows": rows})
    common.print_table([summary for summary in summarize(rows)],
                       ["variant", "size", "seeds", "accuracy_mean", "tune_seconds_mean"], "contrastive variants")
    return 0


def summarize(rows: list[dict]) -> list[dict]:
    """Mean accuracy and tuning seconds a (variant, size)."""
    keys = sorted({(row["variant"], row["size"]) for row in rows}, key=str)
    out = []
    for variant, size in keys:
        mine = [row for row in rows if (row["variant"], row["size"]) == (variant, size)]
        out.append({"variant": variant, "size": size, "seeds": len(mine),
                    "accuracy_mean": float(np.mean([r["accuracy"] for r in mine])),
                    "tune_seconds_mean": float(np.mean([r["tune_seconds"] for r in mine]))})
    return out


if __name__ == "__main__":
    sys.exit(main())
