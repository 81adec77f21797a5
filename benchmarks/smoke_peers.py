"""Smoke test of the peers: each one on a tiny subset, in its own process, one at a time.

    python benchmarks/smoke_peers.py            # all peers
    python benchmarks/smoke_peers.py tfidf_logreg pixel_logreg

Proves the code runs end to end (a few dozen items, one epoch, a handful of steps); the
accuracies mean nothing.
"""

from __future__ import annotations

import sys

import numpy as np

try:
    import peers
    from benchmark_data import fashion_mnist, sst2
    from common import print_table, run_isolated, sample_per_class
except ImportError:
    from benchmarks import peers
    from benchmarks.benchmark_data import fashion_mnist, sst2
    from benchmarks.common import print_table, run_isolated, sample_per_class

SEED = 0


def text_subset(per_class: int, n_test: int):
    texts, labels = sst2("train")
    test_texts, test_labels = sst2("test")
    train_idx = sample_per_class(labels, per_class, SEED)
    test_idx = np.random.default_rng(SEED).choice(len(test_texts), n_test, replace=False)
    return ([texts[i] for i in train_idx], [labels[i] for i in train_idx],
            [test_texts[i] for i in test_idx], [test_labels[i] for i in test_idx])


def image_subset(per_class: int, n_test: int):
    images, labels = fashion_mnist("train")
    test_images, test_labels = fashion_mnist("test")
    train_idx = sample_per_class(labels, per_class, SEED)
    test_idx = np.random.default_rng(SEED).choice(len(test_images), n_test, replace=False)
    return images[train_idx], labels[train_idx], test_images[test_idx], test_labels[test_idx]


def cases():
    text16 = text_subset(per_class=8, n_test=64)   # 16 train / 64 test
    image = image_subset(per_class=3, n_test=64)   # 30 train / 64 test
    return {
        "tfidf_logreg": (peers.tfidf_logreg, text16, {}),
        "setfit_peer": (peers.setfit_peer, text16, {"num_iterations": 2}),
        "plain_text_finetune": (peers.plain_text_finetune, text16, {"epochs": 1, "max_steps": 2}),
        "pixel_logreg": (peers.pixel_logreg, image, {}),
        "plain_image_finetune": (peers.plain_image_finetune, image,
                                 {"epochs": 1, "batch_size": 16, "max_steps": 2}),
    }


def main(names: list[str]) -> int:
    all_cases = cases()
    unknown = set(names) - set(all_cases)
    if unknown:
        print(f"unknown peer(s): {sorted(unknown)}; choose from {sorted(all_cases)}")
        return 2
    rows, failed = [], 0
    for name, (fn, data, kwargs) in all_cases.items():
        if names and name not in names:
            continue
        print(f"running {name} ...", flush=True)
        try:
            result, peak_mb = run_isolated(fn, *data, seed=SEED, **kwargs)
        except RuntimeError as error:
            print(error)
            failed += 1
            rows.append({"peer": name, "status": "FAILED"})
            continue
        rows.append({"peer": name, "status": "ok", "n_train": result["n_train"], "n_test": result["n_test"],
                     "accuracy": result["accuracy"], "train_s": result["train_seconds"],
                     "predict_s": result["predict_seconds"], "seconds": result["seconds"],
                     "epochs": len(result.get("epochs", [])) or None, "peak_rss_mb": peak_mb})
    print_table(rows, ["peer", "status", "n_train", "n_test", "accuracy", "train_s", "predict_s",
                       "seconds", "epochs", "peak_rss_mb"], title="Peer smoke test (tiny subsets)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
