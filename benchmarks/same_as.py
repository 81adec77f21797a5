"""Does the working tree train what an earlier revision trained? Same data, same seed, both codes.

A refactor of the training path should change no number. This script checks out ``--rev`` into a
temporary git worktree and runs one ``headstart.fit`` per case with that revision's code and with
the working tree's (each in a fresh process, on the same feature cache folder layout but separate
caches), then compares test accuracy and the head's weights:

- ``sst2-staged``: 1,400 SST-2 training sentences (1,150 train, 250 validation: the probe's
  strength is chosen on the validation split, as on any set of 1,000 items or more), staged
  fine-tuning, one epoch, tested on 400 test sentences;
- ``fashion-staged``: 1,100 Fashion-MNIST images at 64 px, staged fine-tuning, one epoch, tested
  on 500 test images;
- ``sst2-probe``: the probe on the full SST-2 training split, tested on the test split;
- ``sst2-8-contrastive`` and ``sst2-8-probe``: 8 SST-2 sentences a class (few-shot: contrastive tuning,
  the probe's strength by cross-validation), fine-tuned and probed, tested on 400 test sentences;
- ``sst2-64-contrastive``: the same with 64 sentences a class.

    python benchmarks/same_as.py --rev 00e7d6f
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_data  # noqa: E402
import common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def fit_case(src: str, case: dict, cache_dir: str) -> dict:
    """One fit with the headstart found in ``src`` (run in a fresh process)."""
    sys.path.insert(0, src)
    import os

    os.environ.update(HEADSTART_CACHE=cache_dir, HEADSTART_QUIET="1", **common.QUIET_ENV)
    import torch

    torch.set_num_threads(common.THREADS)
    import headstart

    assert headstart.__file__.startswith(src), headstart.__file__
    config = headstart.FinetuneConfig(**case["finetune"]) if case.get("finetune") else None
    with common.Timer() as timer:
        model = headstart.fit(case["train"], test=case["test"], backbone=case["backbone"], mode=case["mode"],
                              seed=0, image_size=case.get("image_size"), finetune_config=config, baseline=False)
    return {"accuracy": model.metrics["accuracy"], "seconds": timer.seconds,
            "weight_sum": float(np.abs(model.head.weight).sum()), "bias": model.head.bias.tolist(),
            "probe_C": model.info["config"]["probe"]["C"], "counts": model.info["config"]["counts"]}


def cases(folder: Path) -> list[dict]:
    texts, labels = benchmark_data.sst2("train")
    test_texts, test_labels = benchmark_data.sst2("test")
    pick = common.sample_per_class(labels, 700, seed=0)
    sst2_train = benchmark_data.write_csv(folder / "sst2-1400.csv", ["text", "label"],
                                          [(texts[i], labels[i]) for i in pick])
    sst2_test = benchmark_data.write_csv(folder / "sst2-test-400.csv", ["text", "label"],
                                         list(zip(test_texts[:400], test_labels[:400])))
    images, classes = benchmark_data.fashion_mnist("train")
    test_images, test_classes = benchmark_data.fashion_mnist("test")
    train_paths = benchmark_data.fashion_pngs("train", images, classes, common.sample_per_class(classes, 110, seed=0))
    test_index = np.arange(500)
    test_paths = benchmark_data.fashion_pngs("test", test_images, test_classes, test_index)
    label_of = lambda path: Path(path).parent.name  # noqa: E731
    fashion_train = benchmark_data.write_csv(folder / "fashion-1100.csv", ["path", "label"],
                                             [(p, label_of(p)) for p in train_paths])
    fashion_test = benchmark_data.write_csv(folder / "fashion-test-500.csv", ["path", "label"],
                                            [(p, label_of(p)) for p in test_paths])
    staged = {"strategy": "staged", "epochs": 1}
    few = {}
    for k in (8, 64):
        pick = common.sample_per_class(labels, k, seed=0)
        few[k] = benchmark_data.write_csv(folder / f"sst2-{k}.csv", ["text", "label"],
                                          [(texts[i], labels[i]) for i in pick])
    return [
        {"name": "sst2-staged", "train": sst2_train, "test": sst2_test, "backbone": "minilm-l6", "mode": "finetune",
         "finetune": staged},
        {"name": "fashion-staged", "train": fashion_train, "test": fashion_test, "backbone": "effnet-lite0",
         "mode": "finetune", "finetune": staged, "image_size": 64},
        {"name": "sst2-probe", "train": str(benchmark_data.sst2_path("train")),
         "test": str(benchmark_data.sst2_path("test")), "backbone": "minilm-l6", "mode": "probe"},
        {"name": "sst2-8-contrastive", "train": few[8], "test": sst2_test, "backbone": "minilm-l6",
         "mode": "finetune"},
        {"name": "sst2-8-probe", "train": few[8], "test": sst2_test, "backbone": "minilm-l6", "mode": "probe"},
        {"name": "sst2-64-contrastive", "train": few[64], "test": sst2_test, "backbone": "minilm-l6",
         "mode": "finetune"},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="00e7d6f", help="the earlier revision (default: %(default)s)")
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="headstart-same-as-") as tmp:
        tmp = Path(tmp)
        old = tmp / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.rev], check=True,
                       capture_output=True)
        try:
            rows = []
            for case in cases(tmp):
                if args.cases and case["name"] not in args.cases.split(","):
                    continue
                for label, src in (("before", old / "src"), ("after", ROOT / "src")):
                    row = common.run_job(fit_case, str(src), case, str(tmp / f"cache-{label}"))
                    rows.append({"case": case["name"], "code": label, "rev": args.rev if label == "before" else
                                 "working tree", **row})
                    print(f"{case['name']} {label}: accuracy {row.get('accuracy')}, {row.get('seconds', 0):.1f} s",
                          flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)
    summary = []
    for name in dict.fromkeys(row["case"] for row in rows):
        before, after = (next(r for r in rows if r["case"] == name and r["code"] == code) for code in ("before", "after"))
        same = (before.get("accuracy") == after.get("accuracy")
                and abs(before.get("weight_sum", 0) - after.get("weight_sum", 1)) < 1e-3 * max(1.0, before["weight_sum"]))
        summary.append({"case": name, "accuracy_before": before.get("accuracy"), "accuracy_after": after.get("accuracy"),
                        "seconds_before": before.get("seconds"), "seconds_after": after.get("seconds"),
                        "same": same})
    common.print_table(summary, ["case", "accuracy_before", "accuracy_after", "seconds_before", "seconds_after",
                                 "same"], title=f"working tree against {args.rev}, seed 0")
    name = "same_as" + (f"-{args.cases.replace(',', '-')}" if args.cases else "")
    print("written:", common.write_results(name, {"rev": args.rev, "summary": summary, "rows": rows}))


if __name__ == "__main__":
    main()
