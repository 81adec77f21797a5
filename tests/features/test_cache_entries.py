"""`headstart cache list|prune|clear`: the cache folder's entries, their sizes and ages, and removing them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from headstart.cli import app
from headstart.errors import HeadstartError
from headstart.features.cache import FeatureCache
from headstart.features.cache_entries import cache_entries, human_size, parse_size, to_prune

DAY = 24 * 3600
FINGERPRINT = "a1" * 12  # the 24 characters a feature folder and its ONNX exports are named by


def _file(path: Path, size: int, days_old: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = time.time() - days_old * DAY
    os.utime(path, (stamp, stamp))
    return path


def _age(path: Path, days_old: float) -> None:
    stamp = time.time() - days_old * DAY
    os.utime(path, (stamp, stamp))


@pytest.fixture
def cache(tmp_path) -> Path:
    """A cache of four entries: features 3000 B (40 days), their ONNX export 2000 B (20 days), a fine-tune's
    bottom 1000 B (10 days), unpacked weights 500 B (1 day); and a file of the user's beside them."""
    root = tmp_path / "cache"
    features = root / "features" / FINGERPRINT
    _file(features / "shard-1.npz", 2990, 40)
    (features / "backbone.json").write_text(json.dumps({"name": "minilm-l6"}))
    _age(features / "backbone.json", 40)
    _age(features, 40)
    _file(root / "onnx" / f"{FINGERPRINT}.onnx", 2000, 20)
    _file(root / "onnx" / f"{FINGERPRINT}-bottom2.onnx", 1000, 10)
    _file(root / "models" / "all-mpnet-base-v2" / "model.safetensors", 500, 1)
    _age(root / "models" / "all-mpnet-base-v2", 1)
    _file(root / "notes.txt", 10, 100)
    return root


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_entries_have_their_size_age_and_backbone(cache):
    entries = cache_entries(cache)
    assert [(e.kind, e.size, e.label) for e in entries] == [
        ("features", 2990 + len(json.dumps({"name": "minilm-l6"})), "minilm-l6"),
        ("onnx", 2000, "minilm-l6"),
        ("onnx", 1000, "minilm-l6 (bottom 2 groups)"),
        ("models", 500, "all-mpnet-base-v2"),
    ]
    assert [round(e.age_days(time.time())) for e in entries] == [40, 20, 10, 1]


def test_prune_by_age_then_by_size_removes_the_least_recently_used(cache):
    entries = cache_entries(cache)
    assert [e.size for e in to_prune(entries, older_than_days=15)] == [3011, 2000]
    assert [e.size for e in to_prune(entries, max_size=3000)] == [3011, 2000]  # 1500 B left
    assert [e.size for e in to_prune(entries, max_size=1500)] == [3011, 2000]
    assert [e.size for e in to_prune(entries, max_size=1499)] == [3011, 2000, 1000]
    assert [e.size for e in to_prune(entries, older_than_days=30, max_size=10**6)] == [3011]
    assert to_prune(entries, older_than_days=50) == []


@pytest.mark.parametrize("text, size", [("2GB", 2 * 10**9), ("500 mb", 5 * 10**8), ("1.5G", 15 * 10**8),
                                        ("800MiB", 800 * 2**20), ("1000", 1000)])
def test_sizes_people_write(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "2 GiGs", "-1GB", "GB"])
def test_a_size_that_is_not_one_names_the_option(text):
    with pytest.raises(HeadstartError, match="--max-size: cannot read the size"):
        parse_size(text)


def test_cache_list_shows_each_entry_and_the_total(cache):
    result = invoke("cache", "list", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    assert lines[0].split()[:5] == ["features", "3.0", "kB", "40", "days"] and "minilm-l6" in lines[0]
    assert lines[3].split()[:5] == ["models", "500", "B", "1", "day"]
    assert lines[-1] == f"total: 4 entries, {human_size(6511)} in {cache}"


def test_cache_prune_removes_the_old_and_keeps_what_is_not_an_entry(cache):
    result = invoke("cache", "prune", "--older-than", 15, "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"removed 2 of 4 entries, 5.0 kB; 1.5 kB left in {cache}"
    assert not (cache / "features" / FINGERPRINT).exists() and not (cache / "onnx" / f"{FINGERPRINT}.onnx").exists()
    assert (cache / "onnx" / f"{FINGERPRINT}-bottom2.onnx").is_file() and (cache / "notes.txt").is_file()

    result = invoke("cache", "prune", "--max-size", "600B", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    assert [e.label for e in cache_entries(cache)] == ["all-mpnet-base-v2"]


@pytest.mark.parametrize("args, expected", [
    ([], "give --older-than DAYS, --max-size SIZE, or both"),
    (["--max-size", "lots"], "--max-size: cannot read the size 'lots'"),
    (["--older-than", "-1"], "--older-than: -1 days is before now"),
])
def test_cache_prune_without_a_limit_is_one_line_and_removes_nothing(cache, args, expected):
    result = invoke("cache", "prune", *args, "--cache-dir", cache)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and expected in result.stderr and len(result.stderr.splitlines()) == 1
    assert len(cache_entries(cache)) == 4


def test_cache_clear_asks_for_yes(cache):
    result = invoke("cache", "clear", "--cache-dir", cache)
    assert result.exit_code == 2
    assert f"{cache}: this removes all 4 entries (6.5 kB) (add --yes to remove them)" in result.stderr
    assert len(cache_entries(cache)) == 4
    result = invoke("cache", "clear", "--yes", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"removed 4 entries, 6.5 kB from {cache}"
    assert cache_entries(cache) == [] and (cache / "notes.txt").is_file()


def test_a_feature_cache_that_is_read_counts_as_used(tmp_path):
    FeatureCache(tmp_path, FINGERPRINT).put(["h1"], np.ones((1, 4), np.float32))
    for path in [*(tmp_path / "features" / FINGERPRINT).iterdir(), tmp_path / "features" / FINGERPRINT]:
        _age(path, 90)
    assert to_prune(cache_entries(tmp_path), older_than_days=30)
    assert FeatureCache(tmp_path, FINGERPRINT).get(["h1"]).shape == (1, 4)
    assert to_prune(cache_entries(tmp_path), older_than_days=30) == []


def test_an_onnx_export_that_is_loaded_again_counts_as_used(tmp_path, tiny_bert_backbone):
    from headstart.features.extract import onnx_session

    onnx_session(tiny_bert_backbone, tmp_path)
    (export,) = (tmp_path / "onnx").iterdir()
    _age(export, 90)
    assert [e.path for e in to_prune(cache_entries(tmp_path), older_than_days=30)] == [export]
    onnx_session(tiny_bert_backbone, tmp_path)
    assert to_prune(cache_entries(tmp_path), older_than_days=30) == []
