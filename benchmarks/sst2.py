"""SST-2 with ``minilm-l6``: headstart's probe and fine-tune against three peers on the same examples.

For each training size (8, 16 and 64 sentences a class, drawn with ``common.sample_per_class``
per seed, and the full train split) every method trains on the same sentences and is tested
on ``sst2_test.csv``:

- headstart ``probe`` and ``finetune``: ``headstart.fit(train_csv, test=test_csv,
  backbone="minilm-l6", mode=..., seed=...)``; headstart carves its validation items out of the
  sampled ones, except on the full split, where it gets ``val=sst2_dev.csv``. Which of the two
  ``mode="auto"`` keeps (``headstart.learn.auto_choice.keeps_finetuned``) is reported as the method 'auto';
- peers (``benchmarks/peers.py``): TF-IDF + logistic regression, SetFit on the same MiniLM
  folder (skipped on the full split: its default pair sampling is quadratic in the items) and a
  plain fine-tuning loop (all train items; no validation data).

Every job runs in a fresh process (``common.run_isolated``): accuracy, wall seconds and peak
RSS. headstart's seconds are the whole fit (reading, feature extraction, training, test
prediction); a peer's are its training plus one test prediction, pretrained weights loading
included (``benchmarks/peers.py``); imports are outside both. The feature cache
(HEADSTART_CACHE) is a temporary folder, fresh for each size and shared by that size's jobs:
the first headstart job of a size pays ONNX export and extraction, as a user's first run does,
later ones read what is there (each row's ``features`` says what came from the cache).
``--cold-cache`` gives every headstart job an empty cache instead. Prints mean ± std over
seeds and writes ``benchmarks/results/sst2-<sizes>-<date>.json`` after every job (``partial`` until the
last) (``sst2-quick-<date>.json`` with --quick).

    python benchmarks/sst2.py                       # everything (hours on a laptop)
    python benchmarks/sst2.py --sizes 8,16 --methods probe,finetune,setfit --seeds 3
    python benchmarks/sst2.py --quick               # smoke run: 8 a class, 1 seed, 100 test sentences
    python benchmarks/sst2.py --sizes 64 --resume benchmarks/results/sst2-64-<date>.json   # go on where a run stopped
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

try:  # run as `python benchmarks/sst2.py` or imported as `benchmarks.sst2`
    import benchmark_data
    import common
    import peers
    import sweep_jobs
except ImportError:
    from benchmarks import benchmark_data, common, peers, sweep_jobs

BACKBONE = "minilm-l6"
METHODS = ("probe", "finetune", "tfidf", "setfit", "plain")
PEERS = {"tfidf": peers.tfidf_logreg, "setfit": peers.setfit_peer, "plain": peers.plain_text_finetune}
SETFIT_MAX_SEEDS_AT_64 = 3  # the issue: three seeds are enough for SetFit at 64 a class


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="8,16,64,full", help="items a class, or 'full' (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds a sampled size (default: %(default)s)")
    parser.add_argument("--full-seeds", type=int, default=1, help="seeds on the full split (default: %(default)s)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="run in this order, from " + ",".join(METHODS) + " (default: %(default)s)")
    parser.add_argument("--finetune-epochs", type=int, default=None,
                        help="headstart FinetuneConfig.epochs (default: headstart's choice; 3 with --quick)")
    parser.add_argument("--cold-cache", action="store_true", help="an empty feature cache for every headstart job")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: size 8, 1 seed, 100 test sentences, tiny peer training")
    parser.add_argument("--resume", type=Path, default=None,
                        help="a results file of an earlier run (partial or not): its finished jobs are kept, not rerun")
    args = parser.parse_args(argv)
    args.sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in args.methods if m not in METHODS] + [s for s in args.sizes if s != "full" and not s.isdigit()]
    if bad:
        parser.error(f"unknown method or size: {', '.join(bad)}")
    if args.quick:
        args.sizes, args.seeds, args.full_seeds = ["8"], 1, 1
        args.finetune_epochs = args.finetune_epochs or 3
    return args


def peer_options(quick: bool) -> dict:
    if not quick:
        return {"tfidf": {}, "setfit": {}, "plain": {}}
    return {"tfidf": {}, "setfit": {"num_iterations": 2}, "plain": {"epochs": 1, "max_steps": 3}}


def planned_jobs(args) -> tuple[list[tuple[str, int, str]], list[dict]]:
    """(size, seed, method) of every job, in run order; and the skipped ones with the reason."""
    jobs, skipped = [], []
    for size in args.sizes:
        for seed in range(args.full_seeds if size == "full" else args.seeds):
            for method in args.methods:
                if method == "setfit" and size == "full":
                    skipped.append({"size": size, "seed": seed, "method": method,
                                    "reason": "SetFit's default pair sampling on 6,920 sentences is ~24M pairs"})
                elif method == "setfit" and size == "64" and seed >= SETFIT_MAX_SEEDS_AT_64:
                    skipped.append({"size": size, "seed": seed, "method": method,
                                    "reason": f"{SETFIT_MAX_SEEDS_AT_64} seeds are enough for SetFit at 64 a class"})
                else:
                    jobs.append((size, seed, method))
    return jobs, skipped


def check_targets(summary: list[dict], sizes: list[str]) -> list[dict]:
    value = lambda size, method, key="accuracy_mean": sweep_jobs.summary_value(summary, size, method, key)  # noqa: E731
    targets = [
        common.target("full: finetune accuracy >= 0.89", value("full", "finetune"), ">=", 0.89),
        common.target("full: finetune accuracy >= plain loop's", value("full", "finetune"), ">=",
                      value("full", "plain")),
        common.target("full: finetune seconds <= plain loop's", value("full", "finetune", "seconds_mean"), "<=",
                      value("full", "plain", "seconds_mean")),
        common.target("full: probe accuracy >= 0.81", value("full", "probe"), ">=", 0.81),
    ]
    for size in [s for s in ("8", "16", "64") if s in sizes] or ["8", "16", "64"]:
        targets += [
            common.target(f"{size}/class: default mode mean >= SetFit mean", value(size, "auto"), ">=",
                          value(size, "setfit")),
            common.target(f"{size}/class: default mode mean > plain loop mean", value(size, "auto"), ">",
                          value(size, "plain")),
        ]
    return targets


def main(argv=None) -> int:
    args = parse_args(argv)
    texts, labels = benchmark_data.sst2("train")
    test_texts, test_labels = benchmark_data.sst2_test(args.quick)
    run_dir = Path(tempfile.mkdtemp(prefix="headstart-sst2-"))
    test_csv = benchmark_data.write_csv(run_dir / "test.csv", ["text", "label"], zip(test_texts, test_labels))
    dev_csv = str(benchmark_data.sst2_path("dev"))
    options = peer_options(args.quick)
    finetune = {"epochs": args.finetune_epochs} if args.finetune_epochs else None
    jobs, skipped = planned_jobs(args)
    rows = finished_rows(args.resume, jobs) if args.resume else []
    done = {(r["size"], r["seed"], r["method"]) for r in rows}
    if done:
        print(f"resuming: {len(done)} of {len(jobs)} jobs kept from {args.resume}", flush=True)
    try:
        for number, (size, seed, method) in enumerate(jobs, start=1):
            if (size, seed, method) in done:
                continue
            full = size == "full"
            index = np.arange(len(texts)) if full else common.sample_per_class(labels, int(size), seed)
            train_texts, train_labels = [texts[i] for i in index], [labels[i] for i in index]
            if method in ("probe", "finetune"):
                train_csv = benchmark_data.write_csv(run_dir / f"train-{size}-{seed}.csv", ["text", "label"],
                                                     zip(train_texts, train_labels))
                cache = run_dir / "cache" / (f"{size}-{seed}-{method}" if args.cold_cache else size)
                row = common.run_job(sweep_jobs.headstart_job, train_csv, test_csv, backbone=BACKBONE, mode=method,
                                     seed=seed, cache_dir=str(cache), val_csv=dev_csv if full else None,
                                     finetune=finetune if method == "finetune" else None)
            else:
                row = common.run_job(sweep_jobs.peer_job, PEERS[method], train_texts, train_labels, test_texts,
                                     test_labels, seed=seed, **options[method])
            rows.append({"size": size, "seed": seed, **row, "method": method})
            print(f"[{number}/{len(jobs)}] {sweep_jobs.job_line(rows[-1])}", flush=True)
            save(args, rows, skipped, options, finetune, len(test_texts), notes=[], partial=True)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)

    summary = sweep_jobs.summarize(rows + sweep_jobs.default_mode_rows(rows, "text"))
    targets = check_targets(summary, args.sizes)
    title = f"SST-2, {BACKBONE}, {len(test_texts)} test sentences" + (" (QUICK: numbers mean nothing)"
                                                                      if args.quick else "")
    sweep_jobs.print_summary(summary, title)
    common.print_targets(targets)
    mismatched = [r for r in rows if r["status"] == "ok" and r.get("accuracy_reported", r["accuracy"])
                  != r["accuracy"]]
    notes = []
    if mismatched:
        notes.append(f"{len(mismatched)} fine-tune job(s): the test accuracy headstart.fit reported differs from "
                     "that of predicting the test file again with the returned model; 'accuracy' is the "
                     "latter, 'accuracy_reported' fit's (see sweep_jobs.headstart_job).")
        print("\nNOTE: " + notes[-1])
    print(f"\nwrote {save(args, rows, skipped, options, finetune, len(test_texts), notes=notes, partial=False)}")
    return 1 if any(r["status"] != "ok" for r in rows) else 0


def finished_rows(path: Path, jobs: list[tuple[str, int, str]]) -> list[dict]:
    """The rows of ``path`` that finished one of ``jobs``."""
    planned = set(jobs)
    rows = json.loads(Path(path).read_text(encoding="utf-8"))["rows"]
    return [r for r in rows if r.get("status") == "ok" and (r["size"], r["seed"], r["method"]) in planned]


def save(args, rows: list[dict], skipped: list[dict], options: dict, finetune, n_test: int, *, notes: list[str],
         partial: bool) -> Path:
    """``sst2-<sizes>-<date>.json``: written after every job (``partial``) and at the end."""
    summary = sweep_jobs.summarize(rows + sweep_jobs.default_mode_rows(rows, "text"))
    return common.write_results("sst2-quick" if args.quick else "sst2-" + "-".join(map(str, args.sizes)), {
        "quick": args.quick, "partial": partial, "backbone": BACKBONE, "test_items": n_test,
        "config": {"sizes": args.sizes, "seeds": args.seeds, "full_seeds": args.full_seeds, "methods": args.methods,
                   "threads": common.THREADS, "peer_options": options, "headstart_finetune": finetune,
                   "cache": "empty for every headstart job" if args.cold_cache else
                            "fresh per size, shared by that size's jobs (the first headstart job pays extraction)"},
        "summary": summary, "targets": check_targets(summary, args.sizes), "notes": notes, "skipped": skipped,
        "rows": rows})


if __name__ == "__main__":
    sys.exit(main())
