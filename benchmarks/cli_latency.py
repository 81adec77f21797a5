"""How long the command line takes to answer: ``--help``, ``report``, ``label next`` and ``label add``
on cached features, before and after (issue 23: help took 7-8 s, label next/add 50-110 s).

"Before" is a commit of headstart extracted with ``git archive`` into a temporary folder and run
with its own PYTHONPATH; "after" is this checkout's ``src``. Each command runs as its own process
(``python -m headstart.cli ...``), ``--repeats`` times, after one untimed warm-up; the table gives
the median wall time and the median CPU time (user + system: on a shared machine, what the
command itself costs). Both sides share one features cache, filled before anything is timed, so
``label next``/``label add`` measure reading cached features, not computing them.

    .venv/bin/python benchmarks/cli_latency.py                          # before = main at issue 23's start
    .venv/bin/python benchmarks/cli_latency.py --before-commit HEAD~5 --repeats 5 --items 500

Targets (issue 23): ``--help`` and ``report`` under 1 s, ``label next`` and ``label add`` under 2 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_data import sst2  # noqa: E402
from common import REPO_ROOT, print_table, write_results  # noqa: E402

START_COMMIT = "f98bd6c7b75451a4e62a211198b33ba027a8a6f2"  # main when issue 23's command-line work began
TARGETS = {"--help": 1.0, "report": 1.0, "label next": 2.0, "label add": 2.0}


def extract(commit: str, into: Path) -> Path:
    """``git archive`` of ``commit`` extracted into ``into``; returns its ``src`` folder."""
    archive = into / "before.tar"
    subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", "-o", str(archive), commit, "src"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "before", filter="data")
    return into / "before" / "src"


def write_inputs(folder: Path, items: int) -> tuple[Path, Path]:
    """A pool of ``items`` SST-2 texts with ids, and a model folder that ``report`` can read."""
    texts, _ = sst2("train")
    pool = folder / "pool.csv"
    with open(pool, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows([[f"r{i}", text] for i, text in enumerate(texts[:items])])
    model = folder / "model"
    model.mkdir()
    per_class = {name: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 50} for name in ("neg", "pos")}
    (model / "metrics.json").write_text(json.dumps({"accuracy": 0.9, "macro_f1": 0.9, "ece": 0.05, "n": 100,
                                                    "per_class": per_class}))
    return pool, model


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(src: Path, args: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds) that ``headstart args`` took, run from ``src``; raises when it fails.
    CPU time says less about a shared machine's load than wall time does."""
    started, cpu = time.perf_counter(), _cpu_of_children()
    done = subprocess.run([sys.executable, "-m", "headstart.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(src)}, timeout=900)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"headstart {' '.join(args)} failed ({src}): {done.stderr.strip()[-500:]}")
    return seconds, _cpu_of_children() - cpu


def measure(side: str, src: Path, folder: Path, pool: Path, model: Path, env: dict, repeats: int) -> dict:
    """Median seconds of each command on one side, with every run's time."""
    work = folder / f"work-{side}"
    work.mkdir()
    db = str(work / "labels.db")
    run(src, ["label", "init", str(pool), "--labels", "neg,pos", "--db", db, "--retrain-every", "0"], work, env)
    commands = {
        "--help": lambda i: ["--help"],
        "report": lambda i: ["report", str(model)],
        "label next": lambda i: ["label", "next", "-n", "10", "--db", db],
        "label add": lambda i: ["label", "add", f"r{i}", "pos", "--annotator", "bench", "--db", db],
    }
    # untimed: fills the features cache (the first side) and the OS file cache, keeps the features' key
    for name, args in commands.items():
        run(src, args(repeats), work, env)
    times = {name: [run(src, args(i), work, env) for i in range(repeats)] for name, args in commands.items()}
    return {name: {"median_s": statistics.median(wall for wall, _ in runs),
                   "median_cpu_s": statistics.median(cpu for _, cpu in runs),
                   "runs_s": [wall for wall, _ in runs], "runs_cpu_s": [cpu for _, cpu in runs]}
            for name, runs in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-commit", default=START_COMMIT, help="The commit to compare with.")
    parser.add_argument("--before", type=Path, help="A src folder to compare with instead of a commit.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--items", type=int, default=300, help="Items in the labeling pool.")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cli-latency-") as temporary:
        folder = Path(temporary)
        before = options.before or extract(options.before_commit, folder)
        pool, model = write_inputs(folder, options.items)
        env = {**os.environ, "HEADSTART_CACHE": str(folder / "cache"), "HEADSTART_QUIET": "1"}
        env.pop("HEADSTART_LABEL_DB", None)
        sides = {"before": measure("before", before, folder, pool, model, env, options.repeats),
                 "after": measure("after", REPO_ROOT / "src", folder, pool, model, env, options.repeats)}
    rows = [{"command": name, "before (s)": sides["before"][name]["median_s"],
             "after (s)": sides["after"][name]["median_s"],
             "speed-up": sides["before"][name]["median_s"] / sides["after"][name]["median_s"],
             "before CPU (s)": sides["before"][name]["median_cpu_s"],
             "after CPU (s)": sides["after"][name]["median_cpu_s"],
             "target (s)": target, "met": "yes" if sides["after"][name]["median_s"] < target else "no"}
            for name, target in TARGETS.items()]
    print_table(rows, ["command", "before (s)", "after (s)", "speed-up", "before CPU (s)", "after CPU (s)",
                       "target (s)", "met"],
                title=f"headstart command-line latency, median of {options.repeats} runs ({options.items}-item pool)")
    path = write_results("cli_latency", {"before": str(options.before or options.before_commit),
                                         "repeats": options.repeats, "items": options.items, "rows": rows,
                                         "sides": sides})
    print(f"written: {path}")


if __name__ == "__main__":
    main()
