"""Sharded extraction (``headstart extract``): shares, shard files, resuming, merging, bad input."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from headstart.cli import app
from headstart.data.sources import read_dataset
from headstart.errors import HeadstartError
from headstart.features.cache import FeatureCache
from headstart.features.extract import cached_features
from headstart.features.ranks import Rank, current_rank, parse_shard
from headstart.features.sharded import cached_among, extract_share, merge_shards, share_of

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
BATCH = 8  # small batches and chunks, so that a pool of tens of items makes many of each
CHUNK = 16
POOL = 200  # distinct items: four batches of the command's 64, so that two processes get two each


# -- shares -----------------------------------------------------------------------------------------

def pool_texts(n: int, seed: int = 0) -> list[str]:
    """Texts of varied lengths, some repeated."""
    rng = np.random.default_rng(seed)
    words = ["goal", "pasta", "laptop", "the", "and", "really", "cheese", "server", "match"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 30)))) + f" {i}" for i in range(n)]
    return texts + texts[:7]  # repeats: computed once


@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_shares_are_disjoint_cover_the_pool_and_are_balanced(world):
    texts = pool_texts(203)
    hashes = [f"h{text}" for text in texts]
    shares = [share_of(texts, hashes, "text", rank, world, batch_size=BATCH) for rank in range(world)]
    taken = [shares[0].hashes[i] for share in shares for batch in share.batches for i in batch.tolist()]
    assert len(taken) == len(set(taken)) == len(set(hashes)) == 203  # each distinct item exactly once
    sizes = [len(share.batches) for share in shares]
    assert max(sizes) - min(sizes) <= 1
    # The same split whatever process computes it: the same batches as one process's, dealt out by rank.
    [whole] = [share_of(texts, hashes, "text", 0, 1, batch_size=BATCH)]
    for rank, share in enumerate(shares):
        assert [b.tolist() for b in share.batches] == [b.tolist() for b in whole.batches[rank::world]]


def test_a_share_needs_a_rank_below_the_world_size():
    with pytest.raises(ValueError):
        share_of(["a"], ["h"], "text", 2, 2)


@pytest.mark.parametrize("text, rank, world", [("0/1", 0, 1), ("1/2", 1, 2), (" 3 / 8 ", 3, 8)])
def test_shards_are_read(text, rank, world):
    assert parse_shard(text) == Rank(rank, world, source="--shard")


@pytest.mark.parametrize("text, words", [("3/2", "not below the world size 2"), ("2/2", "not below"),
                                         ("0/0", "world size of 0"), ("1", "cannot read"),
                                         ("-1/2", "cannot read"), ("a/b", "cannot read"), ("1/2/3", "cannot read")])
def test_bad_shards_say_what_to_write(text, words):
    with pytest.raises(HeadstartError, match="--shard") as error:
        parse_shard(text)
    assert words in str(error.value)


def test_without_shard_or_launcher_a_process_is_alone(monkeypatch):
    for name in ("ACCELERATE_MIXED_PRECISION", "ACCELERATE_DYNAMO_BACKEND", "ACCELERATE_USE_CPU"):
        monkeypatch.delenv(name, raising=False)
    assert current_rank() == Rank(0, 1)
    assert current_rank("1/3") == Rank(1, 3, source="--shard")


def test_a_shard_inside_a_multi_process_launch_is_refused(monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(HeadstartError, match="leave --shard out"):
        current_rank("0/2")


# -- extraction in this process ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def pool_csv(tmp_path_factory) -> Path:
    """POOL distinct lower-case texts (and 7 repeats) of varied lengths, one column."""
    path = tmp_path_factory.mktemp("pool") / "pool.csv"
    path.write_text("text\n" + "\n".join(pool_texts(POOL)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(pool_csv, tiny_bert_backbone, tmp_path_factory):
    """One process's features of the pool, by the path `fit` takes (cached_features): (hashes, features)."""
    dataset = read_dataset(pool_csv, require_labels=False)
    features = cached_features(tiny_bert_backbone, dataset.items, dataset.hashes, batch_size=BATCH,
                               cache_dir=tmp_path_factory.mktemp("reference-cache"))
    return dataset.hashes, features


def shard_hashes(cache_dir: Path) -> list[list[str]]:
    """The hashes of each shard file under the cache folder."""
    out = []
    for path in sorted(cache_dir.glob("features/*/shard-*.npz")):
        with np.load(path) as data:
            out.append(data["hashes"].tolist())
    return out


def assert_merged_equal(cache_dir: Path, reference, fingerprint: str) -> None:
    """Each shard's items are its own, together they are the pool, and they read back as one process's."""
    hashes, features = reference
    found = [h for shard in shard_hashes(cache_dir) for h in shard]
    assert len(found) == len(set(found)), "two shard files hold the same item"
    assert set(found) == set(hashes)
    merged = merge_shards(cache_dir, fingerprint)
    assert [m.items for m in merged] == [len(set(hashes))]
    np.testing.assert_array_equal(FeatureCache(cache_dir, fingerprint).get(hashes), features)  # bit for bit


def test_a_rerun_computes_nothing_and_a_merge_reads_as_one_process(pool_csv, reference, tiny_bert_backbone,
                                                                  tmp_path):
    dataset = read_dataset(pool_csv, require_labels=False)
    run = dict(cache_dir=tmp_path, batch_size=BATCH, chunk=CHUNK)
    first = extract_share(tiny_bert_backbone, dataset.items, dataset.hashes, Rank(0, 1), **run)
    assert (first.pool, first.share, first.cached, first.computed) == (POOL, POOL, 0, POOL)
    assert first.shards == len(shard_hashes(tmp_path)) >= POOL // CHUNK
    assert not (tmp_path / "features" / tiny_bert_backbone.fingerprint()[:24] / "index.sqlite").exists()
    again = extract_share(tiny_bert_backbone, dataset.items, dataset.hashes, Rank(0, 1), **run)
    assert (again.cached, again.computed, again.shards) == (POOL, 0, 0)
    assert_merged_equal(tmp_path, reference, tiny_bert_backbone.fingerprint())


def test_items_cached_by_another_run_are_skipped_and_their_batches_keep_their_bits(pool_csv, reference,
                                                                                  tiny_bert_backbone, tmp_path):
    dataset = read_dataset(pool_csv, require_labels=False)
    hashes, features = reference
    some = list(dict.fromkeys(hashes))[::3]  # cached by an earlier run, and indexed
    FeatureCache(tmp_path, tiny_bert_backbone.fingerprint()).put(some, features[[hashes.index(h) for h in some]])
    report = extract_share(tiny_bert_backbone, dataset.items, dataset.hashes, Rank(1, 2), cache_dir=tmp_path,
                           batch_size=BATCH, chunk=CHUNK)
    share = share_of(dataset.items, dataset.hashes, "text", 1, 2, batch_size=BATCH)
    mine = {share.hashes[i] for batch in share.batches for i in batch.tolist()}
    assert report.cached == len(mine & set(some)) > 0 and report.computed == len(mine - set(some))
    written = {h for shard in shard_hashes(tmp_path) for h in shard}
    assert written - set(some) == mine - set(some)
    cache = FeatureCache(tmp_path, tiny_bert_backbone.fingerprint())
    np.testing.assert_array_equal(cache.get(sorted(mine)), features[[hashes.index(h) for h in sorted(mine)]])


class CountingState:
    """Accelerate's PartialState as far as a rank uses it: counts its barriers."""

    def __init__(self):
        self.barriers = 0

    def wait_for_everyone(self):
        self.barriers += 1

    @contextlib.contextmanager
    def main_process_first(self):
        self.barriers += 1
        yield


def test_every_rank_meets_the_same_barriers_with_work_or_without(pool_csv, tiny_bert_backbone, tmp_path):
    dataset = read_dataset(pool_csv, require_labels=False)
    counts = []
    for _ in range(2):  # the second time its whole share is cached: nothing to do, the same barriers
        state = CountingState()
        rank = Rank(1, 2, local_world=2, source="accelerate", state=state)
        report = extract_share(tiny_bert_backbone, dataset.items, dataset.hashes, rank, cache_dir=tmp_path,
                               batch_size=BATCH, chunk=CHUNK)
        counts.append((state.barriers, report.computed > 0))
    assert counts == [(1, True), (1, False)]


def test_cached_among_reads_the_shards_when_the_index_is_not_a_database(tmp_path):
    cache = FeatureCache(tmp_path, "f" * 64)
    cache.put(["a", "b"], np.ones((2, 3)))
    (cache.folder / "index.sqlite").write_bytes(b"not a database")
    for suffix in ("-wal", "-shm"):
        (cache.folder / f"index.sqlite{suffix}").unlink(missing_ok=True)
    assert cached_among(cache.folder, ["a", "c"]) == {"a"}
    assert cached_among(tmp_path / "nothing", ["a"]) == set()


# -- separate processes --------------------------------------------------------------------------------

def headstart(*args, env_extra: dict | None = None) -> subprocess.Popen:
    """``python -m headstart.cli ARGS`` started in its own process."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "headstart.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def finished(process: subprocess.Popen, timeout: int = 600) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out


def test_two_shard_processes_merge_into_one_process_features(pool_csv, tiny_bert_name, tiny_bert_backbone,
                                                             tmp_path):
    common = [pool_csv, "--backbone", tiny_bert_name, "--cache-dir", tmp_path, "--chunk", CHUNK, "--threads", 1]
    runs = [headstart("extract", *common, "--shard", f"{rank}/2") for rank in range(2)]
    outs = [finished(run) for run in runs]
    assert "rank 0/2:" in outs[0] and "rank 1/2:" in outs[1]
    merged = finished(headstart("extract", "--merge", "--cache-dir", tmp_path))
    assert f"{POOL} items" in merged
    dataset = read_dataset(pool_csv, require_labels=False)
    one = cached_features(tiny_bert_backbone, dataset.items, dataset.hashes, cache_dir=tmp_path / "one")
    found = [h for shard in shard_hashes(tmp_path) for h in shard]
    assert len(found) == len(set(found)) == POOL  # no two shards hold one item, and together all
    np.testing.assert_array_equal(FeatureCache(tmp_path, tiny_bert_backbone.fingerprint()).get(dataset.hashes), one)


KILL_AT_SECOND_SHARD = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from headstart.features import sharded
    from headstart.cli import app

    real, calls = sharded.write_shard, []

    def dying(folder, hashes, features):
        calls.append(1)
        if len(calls) == 2:  # killed while writing the second shard: half a temporary file left behind
            (Path(folder) / ".shard-killed.tmp.npz").write_bytes(b"PK half")
            os._exit(137)
        return real(folder, hashes, features)

    sharded.write_shard = dying
    app(sys.argv[1:])
""")


def test_a_killed_shard_resumes_where_it_stopped(pool_csv, tiny_bert_name, tiny_bert_backbone,
                                                 tmp_path):
    common = [pool_csv, "--backbone", tiny_bert_name, "--cache-dir", tmp_path, "--chunk", CHUNK, "--threads", 1]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    killed = subprocess.run([sys.executable, "-c", KILL_AT_SECOND_SHARD, "extract", *map(str, common),
                             "--shard", "0/2"], capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert killed.returncode == 137, killed.stderr
    left = shard_hashes(tmp_path)
    assert len(left) == 1 and len(left[0]) >= CHUNK  # one whole shard, the half one hidden
    resumed = finished(headstart("extract", *common, "--shard", "0/2"))
    assert f"{len(left[0])} already cached" in resumed
    finished(headstart("extract", *common, "--shard", "1/2"))
    finished(headstart("extract", "--merge", "--cache-dir", tmp_path))
    dataset = read_dataset(pool_csv, require_labels=False)
    one = cached_features(tiny_bert_backbone, dataset.items, dataset.hashes, cache_dir=tmp_path / "one")
    np.testing.assert_array_equal(FeatureCache(tmp_path, tiny_bert_backbone.fingerprint()).get(dataset.hashes), one)
    found = [h for shard in shard_hashes(tmp_path) for h in shard]
    assert len(found) == len(set(found))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_accelerate_launch_shares_the_pool_and_merges_at_the_end(pool_csv, tiny_bert_name, tiny_bert_backbone,
                                                                  tmp_path):
    pytest.importorskip("accelerate")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port()), "-m", "headstart.cli", "extract", str(pool_csv),
              "--backbone", tiny_bert_name, "--cache-dir", str(tmp_path), "--chunk", str(CHUNK)]
    done = subprocess.run(launch, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0/2:" in done.stdout and "rank 1/2:" in done.stdout
    assert f"{POOL} items in" in done.stdout  # rank 0 merged once both were done
    dataset = read_dataset(pool_csv, require_labels=False)
    one = cached_features(tiny_bert_backbone, dataset.items, dataset.hashes, cache_dir=tmp_path / "one")
    np.testing.assert_array_equal(FeatureCache(tmp_path, tiny_bert_backbone.fingerprint()).get(dataset.hashes), one)


# -- the command's bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--shard", "3/2"], "--shard: rank 3 in '3/2' is not below the world size 2"),
    (["--shard", "0/0"], "--shard: a world size of 0"),
    (["--shard", "half"], "--shard: cannot read 'half'"),
    (["--chunk", "0"], "--chunk: 0 is not a positive number"),
    (["--threads", "0"], "--threads: 0 is not a positive number"),
    (["--shard", "0/2", "--merge"], "--merge: --merge with --shard"),
])
def test_bad_extract_options_are_one_line_and_exit_2(pool_csv, tiny_bert_name, tmp_path, args, words):
    result = runner.invoke(app, ["extract", str(pool_csv), "--backbone", tiny_bert_name, "--cache-dir",
                                 str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.output
    assert not (tmp_path / "features").exists()  # nothing written


def test_extract_without_a_pool_or_merge_says_what_to_give(tmp_path):
    result = runner.invoke(app, ["extract", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no pool to extract" in result.output
    result = runner.invoke(app, ["extract", "--merge", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0 and "no cached features" in result.output
