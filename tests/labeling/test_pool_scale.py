"""A pool of a million items: init streams the file, next reads kept probabilities and memory-mapped
features, pre-labelling resumes after a kill. Small pools here; the million is benchmarks/pool_scale.py."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from headstart.cli import app
from headstart.errors import DataError, LabelingError
from headstart.labeling import init_project, open_project, read_pool
from headstart.labeling import pool_load, pool_stream
from headstart.labeling.project import LabelingProject
from headstart.labeling.retrain import predict_pool, retrain_probe


REPO = Path(__file__).resolve().parents[2]


def write_texts(path: Path, n: int, *, labels: dict | None = None, duplicate: int | None = None) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        for i in range(n):
            item_id = "i0" if duplicate is not None and i == duplicate else f"i{i}"
            writer.writerow([item_id, f"sentence {i}, with a comma", (labels or {}).get(i, "")])
    return path


# -- init streams the pool ------------------------------------------------------------------------

def test_init_never_holds_more_than_a_batch_of_rows(db, tmp_path, monkeypatch):
    """A counting reader: each batch is written before the reader has gone more than a batch past it."""
    monkeypatch.setattr(pool_stream, "BATCH_ROWS", 100)
    read, written, gaps = [0], [0], []
    records = pool_stream._records

    def counting(path):
        for record in records(path):
            read[0] += 1
            yield record

    insert = pool_load._insert

    def recording(session, dialect, rows):
        gaps.append(read[0] - written[0])
        insert(session, dialect, rows)
        written[0] += len(rows)

    monkeypatch.setattr(pool_stream, "_records", counting)
    monkeypatch.setattr(pool_load, "_insert", recording)
    pool = write_texts(tmp_path / "pool.csv", 1050, labels={3: "pos", 700: "neg"})
    project = init_project(pool, labels="neg,pos", db=db, backbone="minilm-l6")
    assert len(gaps) == 11 and max(gaps) <= 100  # 10 full batches and the rest, never more in hand
    assert read[0] == written[0] == project.size == 1050
    expected = read_pool(pool)
    table = project.table()
    assert [row.external_id for row in table] == expected.ids
    assert [row.content for row in table] == expected.items
    assert [row.hash for row in table] == expected.hashes
    assert sorted((r.item, r.label) for r in project.current_labels()) == [("i3", "pos"), ("i700", "neg")]


def test_a_streamed_jsonl_pool_gets_read_pools_ids_and_label_set(tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text("\n".join(json.dumps({"text": f"t{i}", "label": ["a", "b", ""][i % 3]}) for i in range(9)) + "\n",
                    encoding="utf-8")
    project = init_project(pool, db=tmp_path / "p.db", backbone="minilm-l6")
    assert project.ids == read_pool(pool).ids == [str(i) for i in range(1, 10)]
    assert project.classes == ["a", "b"] and project.count_labels() == 6


@pytest.mark.parametrize("problem", ["duplicate", "label", "empty"])
def test_a_bad_row_late_in_the_file_leaves_nothing_behind(db, tmp_path, monkeypatch, problem):
    monkeypatch.setattr(pool_stream, "BATCH_ROWS", 50)
    pool = write_texts(tmp_path / "pool.csv", 400, duplicate=350 if problem == "duplicate" else None,
                       labels={360: "maybe"} if problem == "label" else None)
    if problem == "empty":
        lines = pool.read_text(encoding="utf-8").splitlines()
        lines[371] = "i370,,"
        pool.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = {"duplicate": (DataError, "id 'i0' appears twice: pool.csv row 2 and pool.csv row 352"),
                "label": (LabelingError, "pool.csv row 362: label 'maybe' is not in the label set"),
                "empty": (DataError, "pool.csv row 372, column 'text': the text is empty")}[problem]
    with pytest.raises(expected[0]) as error:
        init_project(pool, labels="neg,pos", db=db, backbone="minilm-l6")
    assert expected[1] in str(error.value)
    if "://" not in db:
        assert not Path(db).exists()  # the file this init created is gone
    else:
        with pytest.raises(LabelingError, match="no labeling project"):
            open_project(db).classes
    project = init_project(write_texts(tmp_path / "good.csv", 10), labels="neg,pos", db=db, backbone="minilm-l6")
    assert project.size == 10  # nothing of the failed init stands in the way


# -- next on a big pool ---------------------------------------------------------------------------

def memmapped(features: np.ndarray, path: Path) -> np.memmap:
    np.save(path, features.astype(np.float32))
    return np.load(path, mmap_mode="r")


def labeled_blob_project(tmp_path, blob_project, per_class: int = 60):
    project, truth = blob_project(n_per_class=per_class, n_classes=3, retrain_every=0)
    ids = project.ids
    project.add_labels([(ids[i], f"c{truth[i]}", "ana") for i in range(12)], source="person")
    return project, truth


@pytest.mark.parametrize("strategy", ["default", "margin", "entropy", "badge", "class-balanced", "kcenter"])
def test_next_on_memory_mapped_features_and_kept_probabilities_is_the_exact_choice(tmp_path, blob_project, strategy,
                                                                                   monkeypatch):
    project, _ = labeled_blob_project(tmp_path, blob_project)
    retrain_probe(project)
    exact = [e["id"] for e in project.next(10, strategy=strategy)]
    mapped = LabelingProject(open_project(project.url).store, features=memmapped(project.features(),
                                                                                  tmp_path / "x.npy"))
    first = mapped.next(10, strategy=strategy)
    assert [e["id"] for e in first] == exact
    kept = sorted(p.name for p in tmp_path.glob("x.*.npy"))  # the probabilities and norms, beside the matrix
    assert any(name.startswith("x.proba-") for name in kept)
    from headstart.labeling import pool_scores

    def no_pass(*args, **kwargs):
        raise AssertionError("the probabilities were computed again although their file is there")

    head, _ = mapped.probe()
    monkeypatch.setattr("headstart.progress.progress_bar", no_pass)  # a second process reads the kept file
    again = pool_scores.pool_proba(np.load(tmp_path / "x.npy", mmap_mode="r"), head, {})
    assert np.array_equal(again, mapped.pool_proba(head))


def test_a_new_probe_gets_new_probabilities_and_old_files_go(tmp_path, blob_project, monkeypatch):
    from headstart.labeling import pool_scores

    monkeypatch.setattr(pool_scores, "KEEP_PROBES", 2)
    project, truth = labeled_blob_project(tmp_path, blob_project)
    mapped = LabelingProject(project.store, features=memmapped(project.features(), tmp_path / "x.npy"))
    ids = mapped.ids
    for round_ in range(4):
        retrain_probe(mapped)
        proba = mapped.pool_proba(mapped.probe()[0])
        expected = mapped.probe()[0].proba(np.asarray(mapped.features()))
        assert np.allclose(proba, expected, atol=1e-6)
        mapped.add_labels([(ids[i], f"c{truth[i]}", "bo") for i in range(12 + 5 * round_, 17 + 5 * round_)],
                          source="person")
    assert len(list(tmp_path.glob("x.proba-*.npy"))) == 2


def test_features_are_memory_mapped_from_one_matrix_file(tmp_path, text_csv, tiny_bert_name, monkeypatch):
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path / "cache"))
    project = init_project(text_csv("topics.csv", n_per_class=6), db=tmp_path / "p.db", backbone=tiny_bert_name)
    features = project.features()
    assert isinstance(features, np.memmap) and features.shape[0] == 18
    assert Path(features.filename).parent == tmp_path / "cache" / "labeling-pools"

    def no_backbone(*args, **kwargs):
        raise AssertionError("the backbone was loaded although the matrix file is there")

    monkeypatch.setattr("headstart.backbones.create_backbone", no_backbone)
    again = open_project(tmp_path / "p.db").features()
    assert again.filename == features.filename and np.array_equal(again, features)


# -- pre-labelling resumes ------------------------------------------------------------------------

def test_prelabel_resumes_after_a_fault_midway_and_shows_progress(tmp_path, blob_project, monkeypatch):
    from headstart.labeling import retrain

    project, _ = labeled_blob_project(tmp_path, blob_project)
    version = retrain_probe(project, refresh=False)
    head = project.probe()[0]
    written, advanced = [], []
    store_chunk = project.store_prediction_chunk

    def fails_on_the_third_chunk(version_id, positions, proba, **options):
        if len(written) == 2:
            raise RuntimeError("killed")
        stored = store_chunk(version_id, positions, proba, **options)
        written.append(len(positions))
        return stored

    monkeypatch.setattr(project, "store_prediction_chunk", fails_on_the_third_chunk)
    with pytest.raises(RuntimeError, match="killed"):
        predict_pool(project, version, head, chunk=25)
    assert len(project.predicted(version)) == 50  # two committed chunks stand

    class Bar:
        def __init__(self, description, total):
            self.total = total

        def __enter__(self):
            return lambda n=1: advanced.append(n)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(project, "store_prediction_chunk", store_chunk)
    monkeypatch.setattr(retrain, "progress_bar", Bar)
    assert predict_pool(project, version, head, chunk=25) == 130  # only what was left
    assert advanced[0] == 50 and sum(advanced) == 180
    predictions = {item: (label, proba) for item, label, _, proba, v in project.predictions() if v == version}
    assert len(predictions) == 180 == len(project.predictions())
    expected = head.proba(np.asarray(project.features()))
    ids = project.ids
    for i in (0, 49, 50, 179):
        assert np.allclose(predictions[ids[i]][1], expected[i], atol=1e-5)
    assert predict_pool(project, version, head) == 0  # all done: nothing to do


KILL_MIDWAY = """
import os, sys
import numpy as np
from headstart.labeling import open_project
from headstart.labeling.project import LabelingProject
from headstart.labeling.prelabel import prelabel

project = LabelingProject(open_project(sys.argv[1]).store, features=np.load(sys.argv[2], mmap_mode="r"))
chunks = []
store_chunk = project.store_prediction_chunk
def then_killed(*args, **options):
    written = store_chunk(*args, **options)
    chunks.append(1)
    if len(chunks) == int(sys.argv[3]):
        os._exit(9)  # no cleanup, no rollback: as a kill
    return written
project.store_prediction_chunk = then_killed
print(prelabel(project, chunk=40))
"""


def test_prelabel_after_a_kill_does_only_what_is_left(tmp_path, blob_project):
    project, _ = labeled_blob_project(tmp_path, blob_project)
    retrain_probe(project, refresh=False)
    features = tmp_path / "x.npy"
    memmapped(project.features(), features)
    run = lambda *args: subprocess.run([sys.executable, "-c", KILL_MIDWAY, project.url, str(features), *args],  # noqa: E731
                                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    killed = run("3")
    assert killed.returncode == 9, killed.stderr
    assert len(project.predictions()) == 120
    finished = run("0")
    assert finished.returncode == 0, finished.stderr
    assert "'resumed': 120" in finished.stdout and len(project.predictions()) == 180


# -- bad input ------------------------------------------------------------------------------------

def test_an_unreachable_postgresql_url_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["label", "init", str(write_texts(tmp_path / "p.csv", 5)), "--labels", "a,b",
                                      "--db", "postgresql://nobody@127.0.0.1:9/nothing"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot open the database" in lines[0] and "127.0.0.1:9" in lines[0]
