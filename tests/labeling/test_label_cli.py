"""`headstart label ...` end to end on a tiny offline backbone: init, next, add, retrain, prelabel,
issues, status, export, import; one-line errors with exit code 2; the background retrain after add."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from headstart.cli import app
from headstart.labeling import open_project

from labeling_helpers import pool_from_labeled

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def pool(tmp_path, text_csv):
    """A pool of 60 learnable texts with ids t0.., and their true labels."""
    path = tmp_path / "pool.csv"
    return path, pool_from_labeled(text_csv("topics.csv", n_per_class=20), path)


def test_the_labeling_loop_from_the_command_line(tmp_path, pool, tiny_bert_name):
    path, truth = pool
    db = tmp_path / "p.db"
    result = invoke("label", "init", path, "--labels", "food,sports,tech", "--db", db, "--backbone", tiny_bert_name,
                    "--retrain-every", 0)
    assert result.exit_code == 0, result.output
    assert "60 items, labels food, sports, tech, 0 labeled" in result.output

    result = invoke("label", "next", "-n", 6, "--json", "--db", db)
    batch = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and len(batch) == 6 and batch[0]["reason"].startswith("cold start")
    for item in list(truth)[:45]:
        assert invoke("label", "add", item, truth[item], "--annotator", "ana", "--db", db).exit_code == 0

    conflict = invoke("label", "add", "t0", "tech" if truth["t0"] != "tech" else "food", "--annotator", "ben",
                      "--db", db)
    assert conflict.exit_code == 2 and conflict.output.count("\n") == 1
    assert "error:" in conflict.output and "already has the label" in conflict.output
    unknown = invoke("label", "add", "zz", "food", "--db", db)
    assert unknown.exit_code == 2 and "unknown item id 'zz'" in unknown.output
    outside = invoke("label", "add", "t50", "music", "--db", db)
    assert outside.exit_code == 2 and "label 'music' is not in the label set" in outside.output
    missing = invoke("label", "status", "--db", tmp_path / "none.db")
    assert missing.exit_code == 2 and "no labeling project here" in missing.output

    result = invoke("label", "retrain", "--db", db)
    assert result.exit_code == 0 and "model version 1: 45 labels" in result.output, result.output
    result = invoke("label", "next", "-n", 3, "--strategy", "margin", "--db", db)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line.split("\t")[1].split()[0] in ("food", "sports", "tech") for line in lines)
    assert not {line.split("\t")[0] for line in lines} & set(list(truth)[:45])

    result = invoke("label", "prelabel", "--target-precision", 0.5, "--db", db)
    assert result.exit_code == 0 and "60 items pre-labeled by model version 1" in result.output, result.output
    result = invoke("label", "issues", "--db", db)
    assert result.exit_code == 0 and "likely label issue(s) queued" in result.output
    status = json.loads(invoke("label", "status", "--json", "--db", db).stdout)
    assert status["labels"] == {"person": 45} and status["latest_model"] == 1

    out = tmp_path / "labels.csv"
    assert invoke("label", "export", out, "--db", db).exit_code == 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 45 and {r["annotator"] for r in rows} == {"ana"}
    tasks = tmp_path / "tasks.json"
    assert invoke("label", "export", tasks, "--db", db).exit_code == 0 and tasks.with_suffix(".xml").is_file()
    other = tmp_path / "other.db"
    assert invoke("label", "init", path, "--labels", "food,sports,tech", "--db", other, "--backbone",
                  tiny_bert_name).exit_code == 0
    result = invoke("label", "import", tasks, "--db", other)
    assert result.exit_code == 0 and "45 label(s) imported" in result.output
    assert open_project(other).status()["labels"] == {"import": 45}

    fitted = invoke("fit", out, "--mode", "probe", "--backbone", tiny_bert_name, "--out", tmp_path / "model")
    assert fitted.exit_code == 0, fitted.output


def test_retrain_if_due_trains_once_enough_labels_arrived_and_not_while_another_holds_the_lock(
        tmp_path, pool, tiny_bert_name):
    """What `label add` starts in the background: `label retrain --if-due`, here in this process."""
    path, truth = pool
    db = tmp_path / "p.db"
    assert invoke("label", "init", path, "--labels", "food,sports,tech", "--db", db, "--backbone", tiny_bert_name,
                  "--retrain-every", 6).exit_code == 0
    project = open_project(db)
    items = list(truth)[:6]
    for item in items[:5]:
        project.add(item, truth[item], annotator="ana")
    assert invoke("label", "retrain", "--if-due", "--db", db).exit_code == 0
    assert project.model_versions() == []  # not due yet
    project.add(items[5], truth[items[5]], annotator="ana")
    with project.retrain_lock():  # another retrain is running: this one leaves the labels to it
        assert invoke("label", "retrain", "--if-due", "--db", db).exit_code == 0
        assert project.model_versions() == []
    result = invoke("label", "retrain", "--if-due", "--db", db)
    assert result.exit_code == 0 and "model version 1: 6 labels" in result.output, result.output


@pytest.mark.subprocess
def test_add_starts_a_background_retrain_when_due(tmp_path, pool, tiny_bert_name):
    """The whole chain, end to end: `label add` in a process of its own starts the detached retrain."""
    path, truth = pool
    db = tmp_path / "p.db"
    assert invoke("label", "init", path, "--labels", "food,sports,tech", "--db", db, "--backbone", tiny_bert_name,
                  "--retrain-every", 6).exit_code == 0
    items = list(truth)[:6]
    for item in items[:5]:
        assert invoke("label", "add", item, truth[item], "--db", db).exit_code == 0
    assert open_project(db).model_versions() == []
    command = [sys.executable, "-m", "headstart.cli", "label", "add", items[5], truth[items[5]], "--db", str(db)]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert done.returncode == 0, done.stderr
    project = open_project(db)
    deadline = time.monotonic() + 120  # the retrain is detached: nothing to wait on but the store
    while not project.model_versions() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [(v.kind, v.n_labels) for v in project.model_versions()] == [("probe", 6)]


@pytest.mark.requires_effnet  # the project's default image backbone: the packaged EfficientNet-Lite0
def test_init_keeps_the_backbone_options_for_the_features(tmp_path, image_folder):
    from headstart.backbones import create_backbone
    from headstart.features.extract import compute_features

    db = tmp_path / "p.db"
    result = invoke("label", "init", image_folder, "--labels", "red,blue,dark", "--db", db, "--image-size", 64,
                    "--no-mirror")
    assert result.exit_code == 0, result.output
    project = open_project(str(db))
    assert project.backbone_options == {"image_size": 64, "mirror": False}
    paths = [row.content for row in project.table()][:4]
    at_64 = compute_features(create_backbone("effnet-lite0", image_size=64), paths, engine="torch")
    at_224 = compute_features(create_backbone("effnet-lite0"), paths, engine="torch")
    assert np.allclose(project.features()[:4], at_64, atol=1e-4) and not np.allclose(at_64, at_224, atol=1e-2)
