"""Opening the feature cache and reading 1,000 random items, at 10k, 100k and 1M cached vectors.

headstart's FeatureCache (an SQLite index of hash -> (shard, row), only the byte ranges of the
rows asked for read from their shards) against the cache it replaced, copied here as the peer
``DictOfAllShards`` (FeatureCache as of commit 00e7d6f: every shard loaded into one dict at open).
Both read the same folder: shards of 1,000 to 10,000 rows of 384 float32 (minilm-l6's width), as
extraction writes them, built once per size with headstart's cache under ``--cache-dir``
(benchmarks/.cache/feature_cache, about 1.7 GB for all three sizes).

Each measurement runs in a fresh process, so its peak resident memory (VmHWM) is its own: open
the cache, ``get`` 1,000 random items (another draw each repeat, the same draw for both), check
that both returned the same rows. The files were just written, so they are in the page cache:
these are warm-cache figures. Then, once per size: headstart's first open of a cache without its
index (a cache written before the index existed: the index is rebuilt from the shards' hashes),
and ``put`` of one 5,000-row shard into the open cache. Not a test: timings depend on the machine
and on what else runs.

    .venv/bin/python benchmarks/feature_cache.py
    .venv/bin/python benchmarks/feature_cache.py --sizes 10000,100000 --repeats 1    # quick look
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import statistics
import sys
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

FINGERPRINT = hashlib.sha256(b"feature cache benchmark").hexdigest()
DIM = 384
READ = 1_000
PUT_ROWS = 5_000


class DictOfAllShards:
    """The peer: headstart's FeatureCache as of commit 00e7d6f, unchanged but for its name."""

    def __init__(self, root, fingerprint, description=None):
        self.folder = Path(root) / "features" / fingerprint[:24]
        self._rows: dict[str, np.ndarray] = {}
        if self.folder.exists():
            for shard in sorted(self.folder.glob("shard-*.npz")):
                with np.load(shard) as data:
                    self._rows.update(zip(data["hashes"].tolist(), data["features"]))
        self._description = description

    def __len__(self) -> int:
        return len(self._rows)

    def missing(self, hashes):
        return [h for h in dict.fromkeys(hashes) if h not in self._rows]

    def get(self, hashes):
        return np.stack([self._rows[h] for h in hashes]).astype(np.float32, copy=False)

    def put(self, hashes, features):
        if not hashes:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"shard-{uuid.uuid4().hex}"
        temporary = self.folder / f".{name}.tmp.npz"
        np.savez(temporary, hashes=np.array(hashes), features=features.astype(np.float32))
        os.replace(temporary, self.folder / f"{name}.npz")
        self._rows.update(zip(hashes, features.astype(np.float32)))


def item_hash(i: int) -> str:
    return hashlib.sha256(f"item-{i}".encode()).hexdigest()


def cache_module():
    """headstart.features.cache loaded from its file alone (it needs numpy and the standard library):
    the package's ``__init__`` imports torch, whose ~900 MB would drown what the caches hold."""
    if "feature_cache_under_test" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "feature_cache_under_test", common.REPO_ROOT / "src" / "headstart" / "features" / "cache.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["feature_cache_under_test"]


def cache_class(implementation: str):
    module = cache_module()  # loaded for both: the same baseline memory
    return {"headstart": module.FeatureCache, "dict of all shards": DictOfAllShards}[implementation]


def rss_mb() -> float:
    """This process's resident memory now, in MB (VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------- building

def build(root: Path, size: int, seed: int) -> dict:
    """Fill ``root`` with ``size`` random vectors in shards of 1,000-10,000 rows, through headstart's put."""
    cache = cache_class("headstart")(root, FINGERPRINT, {"name": "benchmark"})
    rng = np.random.default_rng(seed)
    written, shards = 0, 0
    with common.Timer() as timer:
        while written < size:
            rows = min(int(rng.integers(1_000, 10_001)), size - written)
            features = rng.standard_normal((rows, DIM), dtype=np.float32)
            cache.put([item_hash(i) for i in range(written, written + rows)], features)
            written, shards = written + rows, shards + 1
    return {"size": size, "shards": shards, "build_seconds": timer.seconds,
            "bytes": sum(p.stat().st_size for p in cache.folder.iterdir())}


def ready(root: Path, size: int, seed: int) -> dict:
    """The cache of ``size`` items under ``root``, built unless a complete one is there."""
    marker = root / "built.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("size") == size and info.get("seed") == seed:
            return {**info, "reused": True}
    shutil.rmtree(root, ignore_errors=True)
    info, _ = common.run_isolated(build, root, size, seed)
    info["seed"] = seed
    marker.write_text(json.dumps(info))
    return {**info, "reused": False}


# --------------------------------------------------------------------------- measurements (each in a fresh process)

def open_and_read(implementation: str, root: str, indices: list[int]) -> dict:
    """Open the cache and read ``indices``: seconds of each step, memory before, a digest of the rows."""
    cls = cache_class(implementation)
    hashes = [item_hash(i) for i in indices]
    before = rss_mb()
    with common.Timer() as opening:
        cache = cls(root, FINGERPRINT)
    with common.Timer() as reading:
        features = cache.get(hashes)
    assert features.shape == (len(indices), DIM)
    return {"open_seconds": opening.seconds, "read_seconds": reading.seconds,
            "seconds": opening.seconds + reading.seconds, "rss_before_mb": before,
            "digest": hashlib.sha256(features.tobytes()).hexdigest()}


def first_open_without_index(root: str, indices: list[int]) -> dict:
    """headstart on a cache whose index is gone: rebuilt from the shards, then the read."""
    folder = Path(root) / "features" / FINGERPRINT[:24]
    for suffix in ("", "-wal", "-shm"):
        (folder / f"{cache_module().INDEX_NAME}{suffix}").unlink(missing_ok=True)
    return open_and_read("headstart", root, indices)


def put_one_shard(implementation: str, root: str, seed: int) -> dict:
    """Seconds of ``put`` of one 5,000-row shard into the open cache (the open is not timed)."""
    cache = cache_class(implementation)(root, FINGERPRINT)
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((PUT_ROWS, DIM), dtype=np.float32)
    hashes = [hashlib.sha256(f"put-{implementation}-{seed}-{i}".encode()).hexdigest() for i in range(PUT_ROWS)]
    with common.Timer() as timer:
        cache.put(hashes, features)
    return {"put_seconds": timer.seconds}


# --------------------------------------------------------------------------- the run

def measure_size(root: Path, size: int, args) -> tuple[list[dict], dict]:
    """Every measurement at one size: rows of the open+read runs and the one-off figures."""
    info = ready(root, size, args.seed)
    print(f"\n{size:,} vectors: {info['shards']} shards, {info['bytes'] / 1e9:.2f} GB"
          + (" (reused)" if info["reused"] else f", built in {info['build_seconds']:.1f} s"), flush=True)
    rows = []
    for repeat in range(args.repeats):
        indices = np.random.default_rng(args.seed + 1 + repeat).choice(size, READ, replace=False).tolist()
        repeat_rows = []
        for implementation in ("headstart", "dict of all shards"):
            if implementation != "headstart" and size > args.old_max:
                continue
            row = common.run_job(open_and_read, implementation, str(root), indices)
            row.update(size=size, implementation=implementation, repeat=repeat)
            repeat_rows.append(row)
            print(f"  {implementation}, repeat {repeat}: " + (
                f"{row['seconds']:.3f} s (open {row['open_seconds']:.3f}), peak {row['peak_rss_mb']:.0f} MB"
                if row["status"] == "ok" else "FAILED"), flush=True)
        same = len({r.get("digest") for r in repeat_rows}) == 1  # both read the same bytes
        if not same:
            print(f"  different rows read by the two implementations at repeat {repeat}", file=sys.stderr)
        rows += [{**r, "same_rows": same} for r in repeat_rows]
    indices = np.random.default_rng(args.seed).choice(size, READ, replace=False).tolist()
    once = {"size": size, **info, "without_index": common.run_job(first_open_without_index, str(root), indices)}
    for implementation in ("headstart", "dict of all shards"):
        if implementation == "headstart" or size <= args.old_max:
            once[f"put {implementation}"] = common.run_job(put_one_shard, implementation, str(root), args.seed)
    # The puts added a shard each: the cache no longer matches its marker.
    (root / "built.json").unlink(missing_ok=True)
    return rows, once


def summarize(rows: list[dict], once: list[dict]) -> list[dict]:
    """Per size and implementation: median seconds and peak memory, and old / new ratios."""
    summary = []
    for entry in once:
        size = entry["size"]
        stats = {}
        for implementation in ("headstart", "dict of all shards"):
            ok = [r for r in rows if r["size"] == size and r["implementation"] == implementation
                  and r["status"] == "ok"]
            if ok:
                stats[implementation] = {
                    "seconds": statistics.median(r["seconds"] for r in ok),
                    "open_seconds": statistics.median(r["open_seconds"] for r in ok),
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in ok),
                    "rss_before_mb": statistics.median(r["rss_before_mb"] for r in ok),
                    "runs": len(ok)}
        new, old = stats.get("headstart"), stats.get("dict of all shards")
        put = lambda name: entry.get(f"put {name}", {}).get("put_seconds")  # noqa: E731
        summary.append({
            "size": size, "shards": entry["shards"], "headstart": new, "dict of all shards": old,
            "time_ratio_old_over_new": old["seconds"] / new["seconds"] if new and old else None,
            "peak_ratio_old_over_new": old["peak_rss_mb"] / new["peak_rss_mb"] if new and old else None,
            "without_index_seconds": entry["without_index"].get("seconds"),
            "without_index_peak_rss_mb": entry["without_index"].get("peak_rss_mb"),
            "put_seconds_headstart": put("headstart"), "put_seconds_old": put("dict of all shards")})
    return summary


def print_summary(summary: list[dict]) -> None:
    table = []
    for s in summary:
        for implementation in ("headstart", "dict of all shards"):
            stats = s[implementation]
            if stats:
                table.append({"vectors": f"{s['size']:,}", "shards": s["shards"], "implementation": implementation,
                              "open+read s": stats["seconds"], "open s": stats["open_seconds"],
                              "peak RSS MB": f"{stats['peak_rss_mb']:.0f}",
                              "RSS before MB": f"{stats['rss_before_mb']:.0f}"})
    common.print_table(table, ["vectors", "shards", "implementation", "open+read s", "open s", "peak RSS MB",
                               "RSS before MB"],
                       title=f"open the cache and read {READ:,} random items (median of the repeats, fresh process each)")
    ratio = lambda v: "-" if v is None else f"{v:.1f}x"  # noqa: E731
    common.print_table([{"vectors": f"{s['size']:,}", "time old/new": ratio(s["time_ratio_old_over_new"]),
                         "peak old/new": ratio(s["peak_ratio_old_over_new"]),
                         "first open without index s": s["without_index_seconds"],
                         f"put {PUT_ROWS:,} s (new)": s["put_seconds_headstart"],
                         f"put {PUT_ROWS:,} s (old)": s["put_seconds_old"]} for s in summary],
                       ["vectors", "time old/new", "peak old/new", "first open without index s",
                        f"put {PUT_ROWS:,} s (new)", f"put {PUT_ROWS:,} s (old)"],
                       title="ratios (same run) and one-off costs")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--old-max", type=int, default=1_000_000,
                        help="largest cache the peer is run on (it holds all of it in memory)")
    parser.add_argument("--cache-dir", default=str(common.BENCH_DIR / ".cache" / "feature_cache"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows, once = [], []
    for size in sizes:
        size_rows, size_once = measure_size(Path(args.cache_dir) / str(size), size, args)
        rows += size_rows
        once.append(size_once)
    summary = summarize(rows, once)
    print_summary(summary)
    path = common.write_results("feature_cache", {"config": {**vars(args), "dim": DIM, "read": READ,
                                                             "put_rows": PUT_ROWS},
                                                  "rows": rows, "once": once, "summary": summary})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
