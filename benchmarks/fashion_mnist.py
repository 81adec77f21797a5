"""Fashion-MNIST with ``effnet-lite0``: headstart's probe and fine-tune against two peers on the same images.

For each training size (10, 100 and 500 images a class, i.e. 100, 1,000 and 5,000 in all, drawn
with ``common.sample_per_class`` per seed) every method trains on the same images and is tested
on the 10,000 test images:

- headstart ``probe`` (at ``--probe-image-size``, default 224: the backbone's own) and
  ``finetune`` (at ``--finetune-image-size``, default 112: the plain loop's resolution), through
  ``headstart.fit(train_csv, test=test_csv, ...)`` on PNG copies of the images, written once
  under ``benchmarks/.cache/fashion-mnist/{train,test}/<class>/<index>.png`` (gitignored) and
  listed in a path,label CSV per subset; headstart carves its validation images out of the
  sampled ones. Which mode ``mode="auto"`` picks is reported as the method 'auto';
- peers (``benchmarks/peers.py``) on the same images as arrays: logistic regression on raw
  pixels and a plain fine-tuning loop of the same backbone at ``--plain-image-size`` (112).

Every job runs in a fresh process (``common.run_isolated``): accuracy, wall seconds and peak RSS.
headstart's seconds are the whole fit (reading the PNGs, feature extraction, training, test
prediction); a peer's are its training plus one test prediction (``benchmarks/peers.py``).
The feature cache is fresh for each size and shared by its jobs (the first headstart job of a
size pays ONNX export and extraction); ``--cold-cache`` empties it for every job. Seeds: 3 for
the sizes below 500 a class, 1 from 500. Prints mean ± std over seeds and writes
``benchmarks/results/fashion_mnist-<date>.json`` (``fashion_mnist-quick-<date>.json`` with --quick).

    python benchmarks/fashion_mnist.py                  # everything (hours on a laptop)
    python benchmarks/fashion_mnist.py --sizes 100 --methods probe,pixels
    python benchmarks/fashion_mnist.py --quick          # smoke run: 10 a class, 200 test images, 1 seed
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

try:  # run as `python benchmarks/fashion_mnist.py` or imported as `benchmarks.fashion_mnist`
    import benchmark_data
    import common
    import peers
    import sweep_jobs
except ImportError:
    from benchmarks import benchmark_data, common, peers, sweep_jobs

BACKBONE = "effnet-lite0"
METHODS = ("probe", "finetune", "pixels", "plain")
PEERS = {"pixels": peers.pixel_logreg, "plain": peers.plain_image_finetune}
DEFAULT_SIZES = [10, 100, 500]  # images a class
LARGE = 500  # a class: sizes from here on get --large-seeds seeds


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="images a class (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=3, help=f"seeds below {LARGE} a class (default: %(default)s)")
    parser.add_argument("--large-seeds", type=int, default=1, help=f"seeds from {LARGE} a class (default: %(default)s)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="run in this order, from " + ",".join(METHODS) + " (default: %(default)s)")
    parser.add_argument("--probe-image-size", type=int, default=224, help="headstart probe (default: %(default)s)")
    parser.add_argument("--finetune-image-size", type=int, default=112,
                        help="headstart finetune (default: %(default)s)")
    parser.add_argument("--plain-image-size", type=int, default=112, help="the plain loop (default: %(default)s)")
    parser.add_argument("--finetune-epochs", type=int, default=None,
                        help="headstart FinetuneConfig.epochs (default: headstart's choice; 2 with --quick)")
    parser.add_argument("--cold-cache", action="store_true", help="an empty feature cache for every headstart job")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 10 a class, 200 test images, 1 seed, a few training steps")
    args = parser.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if any(m not in METHODS for m in args.methods):
        parser.error(f"--methods: choose from {','.join(METHODS)}")
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes: whole numbers of images a class")
    if args.quick:
        args.sizes, args.seeds, args.large_seeds = [10], 1, 1
        args.finetune_epochs = args.finetune_epochs or 2
    return args


def peer_options(args) -> dict:
    plain = {"image_size": args.plain_image_size}
    if args.quick:
        plain.update(epochs=1, max_steps=2)
    return {"pixels": {}, "plain": plain}


def check_targets(summary: list[dict]) -> list[dict]:
    value = lambda size, method, key="accuracy_mean": sweep_jobs.summary_value(summary, size, method, key)  # noqa: E731
    return [
        common.target("100/class: probe accuracy >= 0.84", value(100, "probe"), ">=", 0.84),
        common.target("500/class (5,000): finetune accuracy >= 0.92", value(500, "finetune"), ">=", 0.92),
        common.target("500/class (5,000): finetune accuracy > plain loop's", value(500, "finetune"), ">",
                      value(500, "plain")),
        common.target("500/class (5,000): finetune seconds <= plain loop's", value(500, "finetune", "seconds_mean"),
                      "<=", value(500, "plain", "seconds_mean")),
    ]


def main(argv=None) -> int:
    args = parse_args(argv)
    images, labels = benchmark_data.fashion_mnist("train")
    test_images, test_labels = benchmark_data.fashion_mnist("test")
    test_index = np.arange(len(test_labels))
    if args.quick:
        test_index = np.sort(np.random.default_rng(0).choice(len(test_labels), 200, replace=False))
    print(f"writing / checking {len(test_index)} test PNGs under {benchmark_data.FASHION_PNG_DIR} ...", flush=True)
    test_paths = benchmark_data.fashion_pngs("test", test_images, test_labels, test_index)
    test_images, test_labels = test_images[test_index], test_labels[test_index]
    run_dir = Path(tempfile.mkdtemp(prefix="headstart-fashion-"))
    test_csv = benchmark_data.write_csv(run_dir / "test.csv", ["path", "label"],
                                        zip(test_paths, map(benchmark_data.fashion_label, test_labels)))
    options = peer_options(args)
    finetune = {"epochs": args.finetune_epochs} if args.finetune_epochs else None
    image_size = {"probe": args.probe_image_size, "finetune": args.finetune_image_size}
    jobs = [(size, seed, method) for size in args.sizes
            for seed in range(args.large_seeds if size >= LARGE else args.seeds) for method in args.methods]
    rows: list[dict] = []
    try:
        for number, (size, seed, method) in enumerate(jobs, start=1):
            index = common.sample_per_class(labels, size, seed)
            if method in ("probe", "finetune"):
                paths = benchmark_data.fashion_pngs("train", images, labels, index)
                train_csv = benchmark_data.write_csv(run_dir / f"train-{size}-{seed}.csv", ["path", "label"],
                                                     zip(paths, map(benchmark_data.fashion_label, labels[index])))
                cache = run_dir / "cache" / (f"{size}-{seed}-{method}" if args.cold_cache else str(size))
                row = common.run_job(sweep_jobs.headstart_job, train_csv, test_csv, backbone=BACKBONE, mode=method,
                                     seed=seed, cache_dir=str(cache), image_size=image_size[method],
                                     finetune=finetune if method == "finetune" else None)
            else:
                row = common.run_job(sweep_jobs.peer_job, PEERS[method], images[index], labels[index], test_images,
                                     test_labels, seed=seed, **options[method])
            rows.append({"size": size, "seed": seed, **row, "method": method})
            print(f"[{number}/{len(jobs)}] {sweep_jobs.job_line(rows[-1])}", flush=True)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)

    summary = sweep_jobs.summarize(rows + sweep_jobs.default_mode_rows(rows, "image"))
    targets = check_targets(summary)
    title = (f"Fashion-MNIST, {BACKBONE}, {len(test_labels)} test images; sizes are images a class"
             + (" (QUICK: numbers mean nothing)" if args.quick else ""))
    sweep_jobs.print_summary(summary, title)
    common.print_targets(targets)
    notes = []
    mismatched = [r for r in rows if r["status"] == "ok" and r.get("accuracy_reported", r["accuracy"])
                  != r["accuracy"]]
    if mismatched:
        notes.append(f"{len(mismatched)} fine-tune job(s): the test accuracy headstart.fit reported differs from "
                     "that of predicting the test file again with the returned model; 'accuracy' is the "
                     "latter, 'accuracy_reported' fit's (see sweep_jobs.headstart_job).")
        print("\nNOTE: " + notes[-1])
    # A run of some of the sizes says which in its name, so it does not replace the day's full run.
    sizes = "" if args.sizes == DEFAULT_SIZES else "-" + "-".join(map(str, args.sizes))
    path = common.write_results("fashion_mnist-quick" if args.quick else "fashion_mnist" + sizes, {
        "quick": args.quick, "backbone": BACKBONE, "test_items": len(test_labels),
        "config": {"sizes_per_class": args.sizes, "seeds": args.seeds, "large_seeds": args.large_seeds,
                   "methods": args.methods, "image_size": image_size, "threads": common.THREADS,
                   "peer_options": options, "headstart_finetune": finetune,
                   "cache": "empty for every headstart job" if args.cold_cache else
                            "fresh per size, shared by that size's jobs (the first headstart job pays extraction)"},
        "summary": summary, "targets": targets, "notes": notes, "rows": rows})
    print(f"\nwrote {path}")
    return 1 if any(r["status"] != "ok" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
