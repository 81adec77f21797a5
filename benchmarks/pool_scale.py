"""A labeling pool of 10,000 to 1,000,000 items: init time and memory, `next` latency, pre-labelling.

For each size and each store (SQLite; PostgreSQL on a throwaway cluster from tests/labeling/pgcluster.py,
fsync off, on this machine), each step in its own process (peak RSS measured inside it, VmHWM):

1. **init**: ``init_project`` on a CSV of the pool (ids, texts, 20 labels given): the file is
   streamed into the store (``executemany`` on SQLite, ``COPY`` on PostgreSQL). Time and peak RSS;
   a flat RSS across sizes is the point.
2. **next**: a probe on 40 labels, then ``open_project(...).next(20)`` ``--repeats`` times, a new
   project object each time (as each ``headstart label next`` is), one label added between calls.
   The first call after the retrain computes and keeps the probe's probabilities of the pool
   (reported apart); then p50/p99 of the following calls, for the default strategy
   (margin-diverse), margin and BADGE, and for a cold start (no probe, k-means on 20,000 items).
3. **prelabel**: the whole pool pre-labelled in committed chunks (``predict_pool``), time.

The texts are synthetic, made for the size: SST-2's sentences (train, dev, test: 9,613) repeated and
perturbed (a word dropped or two neighbours swapped, seeded by the row), so a pool has the store
footprint of real sentences. The features are synthetic too: extracting a million sentences with
minilm-l6 on this machine's two shared cores would take hours, so the pool's features are random
float32 vectors in 50 Gaussian clusters (384 wide, as minilm-l6's), written once to a ``.npy`` and
memory-mapped, and the labels a simulated annotator gives follow the clusters. What `next` costs
does not depend on what the vectors mean.

    .venv/bin/python benchmarks/pool_scale.py --sizes 2000,5000 --repeats 5     # a smoke run
    flock /tmp/bench.lock .venv/bin/python benchmarks/pool_scale.py             # 10k, 100k, 1M
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import benchmark_data
    import common
except ImportError:
    from benchmarks import benchmark_data, common

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "labeling"))  # pgcluster

DIM = 384
CLUSTERS = 50
LABELED_AT_INIT = 20
PROBE_LABELS = 40
STRATEGIES = ("default", "margin", "badge")


# --------------------------------------------------------------------------- data

def sst2_sentences() -> list[str]:
    sentences = []
    for split in ("train", "dev", "test"):
        path = benchmark_data.sst2_path(split)
        with open(path, newline="", encoding="utf-8") as handle:
            sentences += [row["text"] for row in csv.DictReader(handle)]
    return sentences


def perturbed(sentence: str, row: int) -> str:
    """The sentence with one word dropped or two neighbours swapped, chosen by the row (the first
    copy of each sentence is left as it is)."""
    words = sentence.split()
    rng = random.Random(row)
    if len(words) > 3:
        i = rng.randrange(len(words) - 1)
        if rng.random() < 0.5:
            del words[i]
        else:
            words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def write_pool(path: Path, size: int, sentences: list[str], clusters: np.ndarray) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        for row in range(size):
            base = sentences[row % len(sentences)]
            text = base if row < len(sentences) else perturbed(base, row)
            label = truth_of(clusters, [row])[0] if row < LABELED_AT_INIT else ""
            writer.writerow([f"s{row}", text, label])


def write_features(path: Path, size: int, seed: int = 0) -> np.ndarray:
    """Clustered float32 features (size, DIM), written in chunks to a .npy; returns each item's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32)
    clusters = rng.integers(0, CLUSTERS, size)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(size, DIM))
    for start in range(0, size, 100_000):
        part = clusters[start:start + 100_000]
        out[start:start + len(part)] = centres[part] + 1.5 * rng.standard_normal((len(part), DIM), dtype=np.float32)
    out.flush()
    del out
    return clusters


# --------------------------------------------------------------------------- steps (each in its own process)

def init_step(pool: str, db: str) -> dict:
    from headstart.labeling import init_project

    os.environ["HEADSTART_QUIET"] = "1"
    start = time.perf_counter()
    project = init_project(pool, labels="negative,positive", db=db, backbone="minilm-l6", retrain_every=0)
    seconds = time.perf_counter() - start
    return {"init_s": seconds, "items": project.size, "labels": project.count_labels()}


def anon_rss_mb() -> float:
    """This process's anonymous resident memory (RssAnon): what it holds itself, without the pages of
    memory-mapped files (the feature matrix), which VmHWM counts once per mapping that touched them."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def truth_of(clusters: np.ndarray, positions) -> list[str]:
    return [("negative", "positive")[int(clusters[i]) % 2] for i in positions]


def next_step(db: str, features: str, clusters_path: str, repeats: int) -> dict:
    from headstart.labeling import open_project
    from headstart.labeling.project import LabelingProject
    from headstart.labeling.retrain import retrain_probe

    os.environ["HEADSTART_QUIET"] = "1"
    clusters = np.load(clusters_path)

    def opened():
        return LabelingProject(open_project(db).store, features=np.load(features, mmap_mode="r"))

    result = {}
    times, anon = [], []
    for _ in range(3):  # a cold start: no probe yet (k-center from the CSV's 20 labels)
        start = time.perf_counter()
        opened().next(20)
        times.append(time.perf_counter() - start)
    result["cold_start_s"] = float(np.median(times))
    project = opened()
    picked = [int(e["id"][1:]) for e in project.next(PROBE_LABELS, strategy="random")]
    project.add_labels(list(zip([f"s{i}" for i in picked], truth_of(clusters, picked), ["sim"] * len(picked))),
                       source="person")
    start = time.perf_counter()
    retrain_probe(project, refresh=False)
    result["retrain_s"] = time.perf_counter() - start
    for strategy in STRATEGIES:
        times = []
        for call in range(repeats + 1):
            start = time.perf_counter()
            batch = opened().next(20, strategy=strategy)
            times.append(time.perf_counter() - start)
            anon.append(anon_rss_mb())
            first = int(batch[0]["id"][1:])
            project.add(f"s{first}", truth_of(clusters, [first])[0], annotator="sim")  # a person labels one
        if strategy == STRATEGIES[0]:
            result["first_after_retrain_s"] = times[0]  # computes and keeps the probe's probabilities
        steady = np.array(times[1:])
        result[f"{strategy}_p50_s"] = float(np.percentile(steady, 50))
        result[f"{strategy}_p99_s"] = float(np.percentile(steady, 99))
    result["next_max_anon_rss_mb"] = max(anon)  # sampled after each call
    return result


def prelabel_step(db: str, features: str) -> dict:
    from headstart.labeling import open_project
    from headstart.labeling.project import LabelingProject
    from headstart.labeling.retrain import predict_pool

    os.environ["HEADSTART_QUIET"] = "1"
    project = LabelingProject(open_project(db).store, features=np.load(features, mmap_mode="r"))
    head, version = project.probe()
    start = time.perf_counter()
    predicted = predict_pool(project, version, head)
    return {"prelabel_s": time.perf_counter() - start, "prelabelled": predicted}


def baseline_step() -> dict:
    """What the same imports cost with no pool (init imports torch, through the backbone registry):
    the floor under the peaks above."""
    import headstart.backbones  # noqa: F401
    import headstart.labeling.project  # noqa: F401
    import headstart.labeling.retrain  # noqa: F401
    import sqlalchemy  # noqa: F401

    return {}


# --------------------------------------------------------------------------- driver

def run(sizes: list[int], stores: list[str], repeats: int, work: Path, prelabel: bool) -> list[dict]:
    sentences = sst2_sentences()
    cluster = None
    rows = []
    try:
        if "postgresql" in stores:
            from pgcluster import PostgresCluster

            cluster = PostgresCluster()
            cluster.start()
        for size in sizes:
            pool, features, clusters_path = work / f"pool-{size}.csv", work / f"x-{size}.npy", work / f"c-{size}.npy"
            clusters = write_features(features, size)
            np.save(clusters_path, clusters)
            write_pool(pool, size, sentences, clusters)
            for store in stores:
                db = cluster.new_database() if store == "postgresql" else str(work / f"labels-{size}.db")
                row = {"items": size, "store": store, "pool_csv_mb": pool.stat().st_size / 2 ** 20}
                result, row["init_peak_rss_mb"] = common.run_isolated(init_step, str(pool), db)
                row.update(result)
                result, row["next_peak_rss_mb"] = common.run_isolated(next_step, db, str(features), str(clusters_path),
                                                                      repeats)
                row.update(result)
                if prelabel:
                    result, row["prelabel_peak_rss_mb"] = common.run_isolated(prelabel_step, db, str(features))
                    row.update(result)
                if store == "sqlite":
                    row["sqlite_file_mb"] = Path(db).stat().st_size / 2 ** 20
                    Path(db).unlink()
                rows.append(row)
                print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
                for stale in work.glob(f"x-{size}.proba-*.npy"):  # each store's probe: its own file
                    stale.unlink()
            for path in (pool, features, clusters_path, *work.glob(f"x-{size}.*.npy")):
                path.unlink(missing_ok=True)
            print(f"disk after {size:,} items: {shutil.disk_usage(work).free / 2 ** 30:.1f} GiB free", flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--repeats", type=int, default=20, help="timed `next` calls a strategy (%(default)s)")
    parser.add_argument("--no-prelabel", action="store_true", help="leave out the pre-labelling step")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--name", default="pool_scale")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="pool-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    _, baseline_mb = common.run_isolated(baseline_step)
    try:
        rows = run(sizes, args.stores.split(","), args.repeats, work, not args.no_prelabel)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    columns = ["items", "store", "init_s", "init_peak_rss_mb", "cold_start_s", "first_after_retrain_s",
               "default_p50_s", "default_p99_s", "margin_p50_s", "margin_p99_s", "badge_p50_s", "badge_p99_s",
               "next_peak_rss_mb", "next_max_anon_rss_mb", "prelabel_s"]
    common.print_table([[row.get(c) for c in columns] for row in rows], columns, title="pool scale")
    print(f"peak RSS of the imports alone: {baseline_mb:.0f} MB")
    common.write_results(args.name, {
        "rows": rows, "baseline_peak_rss_mb": baseline_mb, "repeats": args.repeats,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "notes": ["texts: SST-2 sentences (train+dev+test) repeated and perturbed to the size (a word dropped or two "
                  "neighbours swapped); 20 rows carry a label",
                  "features: synthetic, 384-wide float32 in 50 Gaussian clusters, memory-mapped from a .npy "
                  "(extracting 1M sentences with minilm-l6 on 2 shared cores is out of reach); labels follow the "
                  "clusters",
                  "next: a new project object each call (as a CLI call), warm OS page cache; p50/p99 over the "
                  "repeats after the first call after a retrain (which computes and keeps the probe's probabilities)",
                  "peak RSS (VmHWM) counts the memory-mapped file pages a process touched, once per mapping (each "
                  "`next` opens its own); next_max_anon_rss_mb is the process's own memory (RssAnon) after each call",
                  "PostgreSQL: a throwaway local cluster, fsync off; SQLite: WAL, synchronous=FULL",
                  "other sessions shared the 2 cores (load average before/after recorded)"]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
