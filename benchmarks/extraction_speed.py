"""Speed and memory of frozen feature extraction: eager PyTorch, ONNX Runtime, the whole step and the cache.

For ``effnet-lite0`` at 224 px on N=512 Fashion-MNIST test images (PNG files, see
``benchmark_data.fashion_pngs``) and ``minilm-l6`` on N=2,000 SST-2 train sentences (a seeded sample),
each step runs in its own fresh process (``common.run_isolated``) with ``common.THREADS`` threads:

a. ``eager``: ``backbone.module`` under ``torch.inference_mode`` on preprocessed batches;
b. ``onnx``: ``forward_function(backbone, "onnx")`` on the same preprocessed batches (the ONNX
   export, and a second session creation, are timed apart from the forward passes);
c. ``full step``: ``compute_features(backbone, items, engine="onnx")``: reading, preprocessing
   (in a thread) and forward passes, the ONNX Runtime session creation included;
d. ``cache, 1st run``: ``cached_features`` into an empty cache folder (the backbone fingerprint and
   the ONNX export included; ``seconds_without_export`` leaves the export out);
e. ``cache, 2nd run``: the same call in a new process over the cache that (d) filled.

Batches are those of headstart: 64 items, texts sorted by length (``batches_in_length_order``).
(a)-(c) are warmed up once (one batch) before timing; (d) and (e) are a user's first and second
run, not warmed up. Item hashes are computed before (d) and (e) and timed apart (``hash_seconds``).
Reports items/s, peak RSS, the ratios onnx/eager, full step/bare ONNX forward and second/first
run, and the largest absolute difference of ONNX (and the full step) from eager, against the
targets of the issue; writes ``benchmarks/results/extraction_speed-<date>.json``.

    python benchmarks/extraction_speed.py            # N = 512 images and 2,000 sentences
    python benchmarks/extraction_speed.py --quick    # N = 64 of each
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

try:  # run as `python benchmarks/extraction_speed.py` or imported as `benchmarks.extraction_speed`
    import benchmark_data
    import common
except ImportError:
    from benchmarks import benchmark_data, common

BATCH_SIZE = 64
STEPS = ("eager", "onnx", "full step", "cache, 1st run", "cache, 2nd run")
TARGETS = {"effnet-lite0": 5.0, "minilm-l6": 1.5}  # ONNX items/s over eager items/s


def _backbone(name: str, threads: int):
    os.environ.update(HEADSTART_QUIET="1", **common.QUIET_ENV)
    import torch
    torch.set_num_threads(threads)
    from headstart.backbones import create_backbone
    return create_backbone(name)


def _preprocessed(backbone, items: list[str]):
    from headstart.features.extract import batches_in_length_order
    batches = batches_in_length_order(items, backbone.modality, BATCH_SIZE)
    return batches, [backbone.preprocess([items[i] for i in batch]) for batch in batches]


def _time_forward(forward, batches, inputs, n: int, dim: int) -> tuple[np.ndarray, float]:
    forward(inputs[0])  # warm-up
    out = np.zeros((n, dim), dtype=np.float32)
    with common.Timer() as timer:
        for batch, x in zip(batches, inputs):
            out[batch] = forward(x)
    return out, timer.seconds


def _timed_calls(module, name: str, log: dict) -> None:
    """Replace ``module.name`` by a wrapper that adds its wall time to ``log[name]``."""
    fn = getattr(module, name)
    log[name] = 0.0

    def wrapper(*args, **kwargs):
        with common.Timer() as timer:
            out = fn(*args, **kwargs)
        log[name] += timer.seconds
        return out
    setattr(module, name, wrapper)


def eager_job(name: str, items: list[str], threads: int) -> dict:
    import torch
    backbone = _backbone(name, threads)
    batches, inputs = _preprocessed(backbone, items)
    backbone.module.eval()
    with torch.inference_mode():
        out, seconds = _time_forward(lambda x: backbone.module(**x).numpy(), batches, inputs, len(items),
                                     backbone.feature_dim)
    return {"seconds": seconds, "features": out}


def onnx_job(name: str, items: list[str], threads: int, cache_dir: str) -> dict:
    from headstart.features.extract import forward_function, onnx_session
    backbone = _backbone(name, threads)
    with common.Timer() as export:
        onnx_session(backbone, cache_dir)  # exports into cache_dir/onnx, for this job and (c)
    with common.Timer() as session:
        forward, engine = forward_function(backbone, "onnx", cache_dir)
    batches, inputs = _preprocessed(backbone, items)
    out, seconds = _time_forward(forward, batches, inputs, len(items), backbone.feature_dim)
    return {"seconds": seconds, "features": out, "engine": engine, "export_and_session_seconds": export.seconds,
            "session_seconds": session.seconds}


def full_step_job(name: str, items: list[str], threads: int, cache_dir: str) -> dict:
    import headstart.features.extract as extract
    backbone = _backbone(name, threads)
    extract.compute_features(backbone, items[:BATCH_SIZE], engine="onnx", cache_dir=cache_dir)  # warm-up
    log: dict = {}
    _timed_calls(extract, "onnx_session", log)
    with common.Timer() as timer:
        out = extract.compute_features(backbone, items, engine="onnx", batch_size=BATCH_SIZE, cache_dir=cache_dir)
    return {"seconds": timer.seconds, "features": out, "session_seconds": log["onnx_session"]}


def cache_job(name: str, items: list[str], threads: int, cache_dir: str) -> dict:
    import headstart.features.extract as extract
    from headstart.data.dataset import file_hash, text_hash
    backbone = _backbone(name, threads)
    with common.Timer() as hashing:
        hashes = [text_hash(i) for i in items] if backbone.modality == "text" else [file_hash(i) for i in items]
    log: dict = {}
    _timed_calls(extract, "export_onnx", log)
    _timed_calls(extract, "compute_features", log)
    with common.Timer() as timer:
        with common.Timer() as fingerprint:
            backbone.fingerprint()
        out = extract.cached_features(backbone, items, hashes, engine="onnx", batch_size=BATCH_SIZE,
                                      cache_dir=cache_dir)
    return {"seconds": timer.seconds, "features": out, "hash_seconds": hashing.seconds,
            "fingerprint_seconds": fingerprint.seconds, "export_seconds": log["export_onnx"],
            "compute_seconds": log["compute_features"], "seconds_without_export": timer.seconds - log["export_onnx"]}


def measure(name: str, items: list[str], threads: int, run_dir: Path) -> tuple[list[dict], dict]:
    """The five steps of one backbone: rows (features dropped) and the comparisons."""
    export_dir, empty_dir = str(run_dir / f"{name}-onnx"), str(run_dir / f"{name}-cache")
    jobs = {"eager": (eager_job, ()), "onnx": (onnx_job, (export_dir,)), "full step": (full_step_job, (export_dir,)),
            "cache, 1st run": (cache_job, (empty_dir,)), "cache, 2nd run": (cache_job, (empty_dir,))}
    rows, features = [], {}
    for step in STEPS:
        fn, extra = jobs[step]
        print(f"{name}: {step} ...", flush=True)
        row = common.run_job(fn, name, items, threads, *extra)
        features[step] = row.pop("features", None)
        if row["status"] == "ok":
            row["items_per_s"] = len(items) / row["seconds"]
        rows.append({"backbone": name, "step": step, "items": len(items), **row})
    by_step = {r["step"]: r for r in rows}

    def ratio(a, b, key):
        ok = by_step[a]["status"] == by_step[b]["status"] == "ok"
        return by_step[a][key] / by_step[b][key] if ok else None

    def diff(a, b):
        return None if features[a] is None or features[b] is None else float(np.abs(features[a] - features[b]).max())

    first = by_step["cache, 1st run"]
    comparison = {"onnx_over_eager": ratio("onnx", "eager", "items_per_s"),
                  "full_step_over_bare_forward": ratio("full step", "onnx", "items_per_s"),
                  "second_over_first_run": ratio("cache, 2nd run", "cache, 1st run", "seconds"),
                  "second_over_first_run_without_export":
                      by_step["cache, 2nd run"]["seconds"] / first["seconds_without_export"]
                      if by_step["cache, 2nd run"]["status"] == first["status"] == "ok" else None,
                  "max_abs_diff_onnx_vs_eager": diff("onnx", "eager"),
                  "max_abs_diff_full_step_vs_eager": diff("full step", "eager"),
                  "max_abs_diff_second_vs_first_run": diff("cache, 2nd run", "cache, 1st run")}
    return rows, comparison


def check_targets(comparisons: dict) -> list[dict]:
    targets = []
    for name, c in comparisons.items():
        targets += [
            common.target(f"{name}: ONNX items/s over eager", c["onnx_over_eager"], ">=", TARGETS.get(name)),
            common.target(f"{name}: max |ONNX - eager|", c["max_abs_diff_onnx_vs_eager"], "<=", 1e-4),
            common.target(f"{name}: full step over bare forward items/s", c["full_step_over_bare_forward"], ">=", 0.9),
            common.target(f"{name}: 2nd run over 1st run time (1st without export)",
                          c["second_over_first_run_without_export"], "<=", 0.05),
        ]
    return targets


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512, help="effnet-lite0 items (default: %(default)s)")
    parser.add_argument("--texts", type=int, default=2000, help="minilm-l6 items (default: %(default)s)")
    parser.add_argument("--backbones", default="effnet-lite0,minilm-l6", help="(default: %(default)s)")
    parser.add_argument("--threads", type=int, default=common.THREADS, help="(default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="N = 64 of each")
    args = parser.parse_args(argv)
    if args.quick:
        args.images = args.texts = 64

    items = {}
    names = [n.strip() for n in args.backbones.split(",") if n.strip()]
    if "effnet-lite0" in names:
        images, labels = benchmark_data.fashion_mnist("test")
        items["effnet-lite0"] = benchmark_data.fashion_pngs("test", images, labels, np.arange(args.images))
    if "minilm-l6" in names:
        texts, _ = benchmark_data.sst2("train")
        pick = np.random.default_rng(0).choice(len(texts), min(args.texts, len(texts)), replace=False)
        items["minilm-l6"] = [texts[i] for i in pick]
    unknown = set(names) - set(items)
    if unknown:
        parser.error(f"--backbones: only effnet-lite0 and minilm-l6, not {', '.join(sorted(unknown))}")

    run_dir = Path(tempfile.mkdtemp(prefix="headstart-extraction-"))
    rows, comparisons = [], {}
    try:
        for name in names:
            backbone_rows, comparisons[name] = measure(name, items[name], args.threads, run_dir)
            rows += backbone_rows
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)

    shown = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    common.print_table([{**r, "seconds": shown(r.get("seconds"), ".2f"), "items/s": shown(r.get("items_per_s"), ".1f"),
                         "peak RSS MB": shown(r.get("peak_rss_mb"), ".0f")} for r in rows],
                       ["backbone", "step", "items", "status", "seconds", "items/s", "peak RSS MB"],
                       title=f"Frozen feature extraction, batch {BATCH_SIZE}, {args.threads} threads"
                             + (" (QUICK: one or two batches, timings mean little)" if args.quick else ""))
    columns = {"onnx_over_eager": "onnx/eager", "full_step_over_bare_forward": "full/bare",
               "second_over_first_run": "2nd/1st", "second_over_first_run_without_export": "2nd/1st w/o export",
               "max_abs_diff_onnx_vs_eager": "max|onnx-eager|", "max_abs_diff_full_step_vs_eager": "max|full-eager|"}
    common.print_table([{"backbone": n, **{label: shown(c[key], ".3g") for key, label in columns.items()}}
                        for n, c in comparisons.items()], ["backbone", *columns.values()], title="Ratios")
    targets = check_targets(comparisons)
    common.print_targets(targets)
    path = common.write_results("extraction_speed-quick" if args.quick else "extraction_speed", {
        "quick": args.quick, "batch_size": BATCH_SIZE, "threads": args.threads,
        "items": {n: len(v) for n, v in items.items()}, "comparisons": comparisons, "targets": targets,
        "rows": rows})
    print(f"\nwrote {path}")
    return 1 if any(r["status"] != "ok" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
