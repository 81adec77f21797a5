"""Sharded feature extraction: 2 processes against 1 on the same 20,000 SST-2 sentences (minilm-l6).

Each run is ``headstart extract POOL --backbone minilm-l6`` as a user starts it, into a fresh cache
folder that holds only the ONNX export (made once beforehand, so no run pays for it):

- ``1 process``: one process, 2 threads (this machine's cores).
- ``2 x --shard``: ``--shard 0/2`` and ``--shard 1/2`` started together, 1 thread each, then
  ``headstart extract --merge`` (timed on its own).
- ``accelerate launch``: ``accelerate launch --multi_gpu --num_processes 2`` (torchrun; the
  processes join over gloo; Accelerate gives each 1 thread), which merges at the end by itself.

Items/s are given two ways: ``compute`` counts only forward passes and shard writes (the slowest
rank's, for several processes: the job ends when it does), ``wall`` counts everything from start to
exit (Python start, imports, loading the weights, reading and hashing the pool, merging). Then the
merged features of each sharded run are compared with the one process's, item by item.

The pool: SST-2 has 9,613 sentences here (train, dev and test); the other 10,387 are copies with one
word dropped (the word chosen by position), deduplicated. They are synthetic, but with SST-2's
length distribution, which is what the cost depends on.

On a 2-core machine two processes cannot beat one that already uses both cores; the figure is
here to show what sharding costs, not what it gains (that needs more cores, GPUs or machines). The
machine is shared with other sessions: the load average before and after each run is recorded.

    .venv/bin/python benchmarks/sharded_extraction.py --items 500          # check
    flock /tmp/bench.lock .venv/bin/python benchmarks/sharded_extraction.py  # the timed run
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_data  # noqa: E402
import common  # noqa: E402

WORK = common.BENCH_DIR / ".cache" / "sharded_extraction"
BACKBONE = "minilm-l6"
REPORT = re.compile(r"rank (\d+)/(\d+): (\d+) of (\d+) items, (\d+) already cached, (\d+) computed in "
                    r"([\d.]+) s")
RUNS = ("1 process", "2 x --shard", "accelerate launch")


def pool_sentences(n: int) -> list[str]:
    """``n`` distinct sentences: SST-2's, then copies with one word dropped."""
    originals = [text for split in ("train", "dev", "test") for text in benchmark_data.sst2(split)[0]]
    seen = dict.fromkeys(originals)
    copy = 1
    while len(seen) < n and copy < 50:
        for i, text in enumerate(originals):
            words = text.split()
            if len(words) > 2:
                drop = (copy * 31 + i) % len(words)
                seen.setdefault(" ".join(words[:drop] + words[drop + 1:]))
            if len(seen) >= n:
                break
        copy += 1
    return list(seen)[:n]


def environment() -> dict:
    src = str(common.REPO_ROOT / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""), "HEADSTART_QUIET": "1",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def fresh_cache(name: str, onnx_folder: Path) -> Path:
    """An empty cache folder but for the ONNX export (hard links, else copies)."""
    root = WORK / name
    shutil.rmtree(root, ignore_errors=True)
    (root / "onnx").mkdir(parents=True)
    for path in onnx_folder.iterdir():
        try:
            os.link(path, root / "onnx" / path.name)
        except OSError:
            shutil.copy2(path, root / "onnx" / path.name)
    return root


def headstart_command(*args) -> list[str]:
    return [sys.executable, "-m", "headstart.cli", *map(str, args)]


def run_processes(commands: list[list[str]]) -> tuple[float, list[str]]:
    """Start ``commands`` together; (seconds until the last exits, their outputs). Fails on an error."""
    started = time.perf_counter()
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=environment(), cwd=common.REPO_ROOT) for command in commands]
    outputs = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode:
            raise RuntimeError(f"{' '.join(process.args)} failed:\n{err[-3000:]}")
        outputs.append(out)
    return time.perf_counter() - started, outputs


def rank_reports(outputs: list[str]) -> list[dict]:
    reports = []
    for match in REPORT.finditer("\n".join(outputs)):
        rank, world, share, pool, cached, computed, seconds = match.groups()
        reports.append({"rank": f"{rank}/{world}", "share": int(share), "computed": int(computed),
                        "seconds": float(seconds)})
    return sorted(reports, key=lambda report: report["rank"])


def one_run(name: str, pool: Path, onnx_folder: Path, threads: int) -> dict:
    cache = fresh_cache(name.replace(" ", "-").replace("/", ""), onnx_folder)
    common_args = [pool, "--backbone", BACKBONE, "--cache-dir", cache]
    load_before = os.getloadavg()
    merge_seconds = None
    if name == "1 process":
        wall, outputs = run_processes([headstart_command("extract", *common_args, "--threads", threads)])
    elif name == "2 x --shard":
        per = max(1, threads // 2)
        wall, outputs = run_processes([headstart_command("extract", *common_args, "--shard", f"{rank}/2",
                                                         "--threads", per) for rank in range(2)])
        merge_seconds, _ = run_processes([headstart_command("extract", "--merge", "--cache-dir", cache)])
    else:
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                  "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                  "--main_process_port", "29531", "-m", "headstart.cli", "extract", *map(str, common_args)]
        wall, outputs = run_processes([launch])
    reports = rank_reports(outputs)
    computed = sum(report["computed"] for report in reports)
    slowest = max(report["seconds"] for report in reports)
    return {"run": name, "processes": len(reports), "computed": computed, "compute_seconds": slowest,
            "compute_items_per_s": computed / slowest, "wall_seconds": wall, "wall_items_per_s": computed / wall,
            "merge_seconds": merge_seconds, "ranks": reports, "cache": cache,
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()]}


def features_of(cache: Path, hashes: list[str]) -> np.ndarray:
    from headstart.backbones import create_backbone
    from headstart.features.cache import FeatureCache

    return FeatureCache(cache, create_backbone(BACKBONE).fingerprint()).get(hashes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=common.THREADS, help="cores to share out (default 2)")
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated, in this order, of: " + ", ".join(RUNS))
    parser.add_argument("--tag", default="", help="added to the result file's name (another order, say)")
    args = parser.parse_args()
    runs = [name.strip() for name in args.runs.split(",") if name.strip()]

    os.environ.update({key: value for key, value in environment().items() if key != "PYTHONPATH"})
    sys.path.insert(0, str(common.REPO_ROOT / "src"))
    from headstart.backbones import create_backbone
    from headstart.data.sources import text_hash
    from headstart.features.extract import onnx_session

    WORK.mkdir(parents=True, exist_ok=True)
    texts = pool_sentences(args.items)
    pool = WORK / f"pool-{len(texts)}.csv"
    with open(pool, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([text] for text in texts)
    onnx_session(create_backbone(BACKBONE), WORK / "export")  # exported once, outside every timing

    rows = []
    for name in runs:
        print(f"{name} ...", flush=True)
        rows.append(one_run(name, pool, WORK / "export" / "onnx", args.threads))
    hashes = [text_hash(text) for text in texts]
    base = next((row for row in rows if row["run"] == "1 process"), None)
    reference = features_of(base["cache"], hashes) if base else None
    for row in rows:
        row["ratio_compute_items_per_s_vs_1"] = row["compute_items_per_s"] / base["compute_items_per_s"] if base else None
        row["ratio_wall_items_per_s_vs_1"] = row["wall_items_per_s"] / base["wall_items_per_s"] if base else None
        if reference is not None and row is not base:
            got = features_of(row["cache"], hashes)
            row["max_abs_diff_vs_1"] = float(np.abs(got - reference).max())
            row["bit_identical_to_1"] = bool(np.array_equal(got, reference))
        row["cache"] = str(row["cache"])

    common.print_table(rows, ["run", "processes", "computed", "compute_seconds", "compute_items_per_s",
                              "wall_seconds", "wall_items_per_s", "ratio_compute_items_per_s_vs_1",
                              "ratio_wall_items_per_s_vs_1", "merge_seconds", "bit_identical_to_1"],
                       title=f"{len(texts)} sentences, {BACKBONE}, {args.threads} cores shared out")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    path = common.write_results(f"sharded_extraction-{len(texts)}" + (f"-{args.tag}" if args.tag else ""), {
        "items": len(texts), "backbone": BACKBONE, "threads": args.threads, "order": runs, "rows": rows,
        "pool": "9,613 SST-2 sentences (train, dev, test), then copies with one word dropped, deduplicated: "
                "synthetic text beyond SST-2's own, with its length distribution",
        "notes": "2 cores shared with other sessions (load averages per run; uptime at the end: "
                 f"{uptime}); ONNX export made once before the runs; compute = forward passes and shard "
                 "writes of the slowest rank, wall = from start to exit of every process",
    })
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
