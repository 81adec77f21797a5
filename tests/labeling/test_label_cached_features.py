"""`label next` and `label add` on features the cache holds: read without loading the backbone."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from headstart.cli import app
from headstart.labeling import open_project
from headstart.labeling.item_features import FEATURES_KEY

from labeling_helpers import pool_from_labeled

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_next_and_add_read_cached_features_without_the_backbone(tmp_path, text_csv, tiny_bert_name, monkeypatch):
    pool = tmp_path / "pool.csv"
    truth = pool_from_labeled(text_csv("topics.csv", n_per_class=8), pool)
    db = tmp_path / "p.db"
    assert invoke("label", "init", pool, "--labels", "food,sports,tech", "--db", db, "--backbone", tiny_bert_name,
                  "--retrain-every", 0, "--no-shift-check").exit_code == 0
    first = invoke("label", "next", "-n", 4, "--json", "--db", db)  # computes the features, keeps their key
    assert first.exit_code == 0, first.output
    project = open_project(db)
    key = project.settings[FEATURES_KEY]
    features = project.features()

    def no_backbone(*args, **kwargs):
        raise AssertionError("the backbone was loaded although the cache holds every item")

    monkeypatch.setattr("headstart.backbones.create_backbone", no_backbone)
    monkeypatch.setattr("headstart.backbones.registry.create_backbone", no_backbone)
    again = invoke("label", "next", "-n", 4, "--json", "--db", db)
    assert again.exit_code == 0, (again.output, again.exception)
    assert [json.loads(line)["id"] for line in again.stdout.splitlines()] == \
        [json.loads(line)["id"] for line in first.stdout.splitlines()]
    added = invoke("label", "add", "t0", truth["t0"], "--annotator", "ana", "--db", db)
    assert added.exit_code == 0, (added.output, added.exception)
    reopened = open_project(db)
    assert reopened.settings[FEATURES_KEY] == key
    assert (reopened.features() == features).all()
    assert [record.item for record in reopened.current_labels()] == ["t0"]


def test_items_the_cache_lacks_load_the_backbone_again(tmp_path, text_csv, tiny_bert_name, monkeypatch):
    """A pruned cache (here: an empty cache folder) falls back to the backbone, and keeps the same key."""
    db = tmp_path / "p.db"
    data = text_csv("topics.csv", n_per_class=4)
    assert invoke("label", "init", data, "--db", db, "--backbone", tiny_bert_name, "--retrain-every", 0,
                  "--no-shift-check").exit_code == 0
    project = open_project(db)
    before = project.features()
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path / "empty-cache"))
    after = open_project(db).features()
    assert abs(after - before).max() < 1e-5
    assert open_project(db).settings[FEATURES_KEY] == project.settings[FEATURES_KEY]
