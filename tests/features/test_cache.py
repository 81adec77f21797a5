"""The on-disk feature cache: round trips, the index, killed writes, concurrent writers, lazy reads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from headstart.features import cache as cache_module
from headstart.features.cache import INDEX_NAME, FeatureCache

FINGERPRINT = "0123456789abcdef" * 4
DIM = 6


def keys(ids) -> list[str]:
    return [f"item-{i}" for i in ids]


def vectors(ids) -> np.ndarray:
    """Distinct features per item id, so that a row read from the wrong place shows."""
    ids = np.asarray(list(ids), dtype=np.float32)
    return ids[:, None] * 100 + np.arange(DIM, dtype=np.float32)


def filled(root, batches) -> FeatureCache:
    """A cache holding one shard per batch of item ids."""
    cache = FeatureCache(root, FINGERPRINT, {"name": "test"})
    for ids in batches:
        cache.put(keys(ids), vectors(ids))
    return cache


def shards(cache: FeatureCache) -> list:
    return sorted(cache.folder.glob("shard-*.npz"))


def test_round_trip_missing_and_length(tmp_path):
    cache = FeatureCache(tmp_path, FINGERPRINT)
    assert len(cache) == 0 and cache.missing(keys([1, 2])) == keys([1, 2])
    assert not cache.folder.exists()  # nothing is written before the first put
    cache.put(keys(range(10)), vectors(range(10)))
    cache.put(keys(range(10, 15)), vectors(range(10, 15)).astype(np.float64))
    assert len(cache) == 15
    # Unique, in first-seen order, only the absent ones.
    assert cache.missing(keys([20, 3, 21, 20, 14, 22, 21])) == keys([20, 21, 22])
    got = cache.get(keys(range(15)))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, vectors(range(15)))
    assert (cache.folder / "backbone.json").exists() is False  # no description given
    with pytest.raises(KeyError):
        cache.get(keys([3, 99]))
    with pytest.raises(ValueError):
        cache.put(keys([30, 31]), vectors([30]))


def test_get_follows_the_order_asked_across_shards(tmp_path):
    cache = filled(tmp_path, [range(0, 5), range(5, 12), range(12, 20)])
    order = [19, 0, 7, 7, 12, 3, 19, 5]
    np.testing.assert_array_equal(cache.get(keys(order)), vectors(order))
    assert (cache.folder / "backbone.json").is_file()


def test_a_second_instance_sees_the_first_ones_writes(tmp_path):
    early = FeatureCache(tmp_path, FINGERPRINT)  # opened before the folder existed
    first = filled(tmp_path, [range(4)])
    np.testing.assert_array_equal(early.get(keys([3, 0])), vectors([3, 0]))
    second = FeatureCache(tmp_path, FINGERPRINT)  # opened before the next write
    first.put(keys(range(4, 9)), vectors(range(4, 9)))
    assert second.missing(keys(range(10))) == keys([9])
    assert len(second) == 9
    np.testing.assert_array_equal(second.get(keys([8, 1, 5])), vectors([8, 1, 5]))
    second.put(keys([9]), vectors([9]))
    np.testing.assert_array_equal(FeatureCache(tmp_path, FINGERPRINT).get(keys(range(10))), vectors(range(10)))


def test_a_killed_write_leaves_nothing_that_is_read(tmp_path):
    cache = filled(tmp_path, [range(5), range(5, 10)])
    whole = shards(cache)[0].read_bytes()
    # A run killed while writing: its temporary file; and a shard cut short (renamed before the
    # data reached the disk) holding items 10-14.
    (cache.folder / ".shard-deadbeef.tmp.npz").write_bytes(whole[: len(whole) // 2])
    stale = cache.folder / ".shard-0ld.tmp.npz"  # one from a run killed two days ago
    stale.write_bytes(whole[:100])
    os.utime(stale, (stale.stat().st_atime - 2 * 86400,) * 2)
    cut = FeatureCache(tmp_path / "other", FINGERPRINT)
    cut.put(keys(range(10, 15)), vectors(range(10, 15)))
    data = shards(cut)[0].read_bytes()
    (cache.folder / "shard-cut.npz").write_bytes(data[: len(data) - 64])

    reopened = FeatureCache(tmp_path, FINGERPRINT)
    assert not stale.exists()  # removed; a recent one may be another writer's, in progress
    assert (cache.folder / ".shard-deadbeef.tmp.npz").exists()
    assert len(reopened) == 10
    assert reopened.missing(keys(range(15))) == keys(range(10, 15))
    np.testing.assert_array_equal(reopened.get(keys(range(10))), vectors(range(10)))
    reopened.put(keys(range(10, 15)), vectors(range(10, 15)))  # computed again
    np.testing.assert_array_equal(FeatureCache(tmp_path, FINGERPRINT).get(keys(range(15))), vectors(range(15)))


def test_a_shard_truncated_after_it_was_indexed_counts_as_missing(tmp_path):
    cache = filled(tmp_path, [range(5)])
    cache.put(keys(range(5, 10)), vectors(range(5, 10)))
    second = next(p for p in shards(cache) if "item-5" in np.load(p)["hashes"].tolist())
    os.truncate(second, second.stat().st_size // 2)  # into the features: their end is gone
    reopened = FeatureCache(tmp_path, FINGERPRINT)
    assert reopened.missing(keys(range(10))) == keys(range(5, 10))
    reopened.put(keys(range(5, 10)), vectors(range(5, 10)))
    np.testing.assert_array_equal(reopened.get(keys(range(10))), vectors(range(10)))


def test_a_write_killed_before_its_index_update_is_indexed_at_the_next_open(tmp_path, monkeypatch):
    cache = filled(tmp_path, [range(3)])

    def killed(self, shards):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(FeatureCache, "_index", killed)
        with pytest.raises(KeyboardInterrupt):
            cache.put(keys(range(3, 8)), vectors(range(3, 8)))
    assert len(shards(cache)) == 2 and cache.missing(keys(range(8))) == keys(range(3, 8))
    reopened = FeatureCache(tmp_path, FINGERPRINT)
    assert reopened.missing(keys(range(8))) == []
    np.testing.assert_array_equal(reopened.get(keys([7, 0, 4])), vectors([7, 0, 4]))


def test_an_entry_whose_shard_is_gone_counts_as_missing(tmp_path):
    cache = filled(tmp_path, [range(4), range(4, 8)])
    first = FeatureCache(tmp_path, FINGERPRINT).get(keys([0]))
    gone = [p for p in shards(cache) if not np.array_equal(np.load(p)["features"][:1], first)]
    gone[0].unlink()
    reopened = FeatureCache(tmp_path, FINGERPRINT)
    assert len(reopened) == 4
    assert reopened.missing(keys(range(8))) == keys(range(4, 8))
    np.testing.assert_array_equal(reopened.get(keys(range(4))), vectors(range(4)))
    # A cache opened before the shard went still reads the others and reports the rest missing.
    assert cache.missing(keys(range(8))) == keys(range(4, 8))


def test_a_shard_written_after_one_vanished_is_read_by_a_cache_that_knew_the_vanished_one(tmp_path):
    first = filled(tmp_path, [range(4), range(4, 8)])
    np.testing.assert_array_equal(first.get(keys(range(8))), vectors(range(8)))
    vanished = next(p for p in shards(first) if "item-4" in np.load(p)["hashes"].tolist())
    vanished.unlink()
    second = FeatureCache(tmp_path, FINGERPRINT)  # forgets the vanished shard
    second.put(keys(range(20, 25)), vectors(range(20, 25)))
    np.testing.assert_array_equal(first.get(keys([22, 1, 24])), vectors([22, 1, 24]))


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_the_index_is_rebuilt_from_the_shards(tmp_path, damage):
    cache = filled(tmp_path, [range(6), range(6, 9)])
    folder = cache.folder
    del cache
    for suffix in ("", "-wal", "-shm"):
        (folder / f"{INDEX_NAME}{suffix}").unlink(missing_ok=True)
    if damage == "garbage":
        (folder / INDEX_NAME).write_bytes(b"not a database, not at all" * 100)
    reopened = FeatureCache(tmp_path, FINGERPRINT)
    assert len(reopened) == 9
    np.testing.assert_array_equal(reopened.get(keys([8, 2, 6])), vectors([8, 2, 6]))


def test_shards_written_before_the_index_existed_are_read(tmp_path):
    folder = tmp_path / "features" / FINGERPRINT[:24]
    folder.mkdir(parents=True)
    for number, ids in enumerate([range(5), range(5, 7)]):
        # How shards were written before the index: np.savez of hashes and float32 features.
        np.savez(folder / f"shard-old{number}.npz", hashes=np.array(keys(ids)),
                 features=vectors(ids).astype(np.float32))
    cache = FeatureCache(tmp_path, FINGERPRINT)
    assert len(cache) == 7 and cache.missing(keys(range(8))) == keys([7])
    np.testing.assert_array_equal(cache.get(keys([6, 0, 3])), vectors([6, 0, 3]))


def test_reading_a_few_items_opens_only_their_shards(tmp_path, monkeypatch):
    batches = [range(start, start + 50) for start in range(0, 1000, 50)]
    filled(tmp_path, batches)
    opened, loaded = [], []
    real_map, real_load, real_layout = cache_module.read_rows, np.load, cache_module.read_layout
    monkeypatch.setattr(cache_module, "read_rows",
                        lambda path, shard, rows: opened.append(path.name) or real_map(path, shard, rows))
    monkeypatch.setattr(cache_module.np, "load", lambda *a, **k: loaded.append(a) or real_load(*a, **k))
    monkeypatch.setattr(cache_module, "read_layout", lambda *a: loaded.append(a) or real_layout(*a))

    cache = FeatureCache(tmp_path, FINGERPRINT)
    wanted = [512, 17, 530]  # two shards of twenty
    assert cache.missing(keys(wanted)) == []
    np.testing.assert_array_equal(cache.get(keys(wanted)), vectors(wanted))
    assert loaded == []  # opening read no shard, not even its hashes
    holders = {p.name for p in shards(cache) if set(real_load(p)["hashes"].tolist()) & set(keys(wanted))}
    assert len(holders) == 2 and sorted(opened) == sorted(holders)


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from headstart.features.cache import FeatureCache

    root, first, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    cache = FeatureCache(root, {fingerprint!r})
    while not go.exists():
        time.sleep(0.005)
    for start in range(first, first + 600, 20):
        ids = np.arange(start, start + 20, dtype=np.float32)
        cache.put([f"item-{{i}}" for i in range(start, start + 20)],
                  ids[:, None] * 100 + np.arange({dim}, dtype=np.float32))
""").format(fingerprint=FINGERPRINT, dim=DIM)


def test_concurrent_writers_keep_each_others_entries(tmp_path):
    filled(tmp_path, [range(2)])  # the folder and its index exist; both writers open them
    go = tmp_path / "go"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(first), str(go)])
               for first in (1000, 2000)]
    go.touch()
    assert [writer.wait(timeout=300) for writer in writers] == [0, 0]
    ids = list(range(2)) + list(range(1000, 1600)) + list(range(2000, 2600))
    cache = FeatureCache(tmp_path, FINGERPRINT)
    assert len(cache) == len(ids) and len(shards(cache)) == 61
    assert cache.missing(keys(ids)) == []
    np.testing.assert_array_equal(cache.get(keys(ids)), vectors(ids))
