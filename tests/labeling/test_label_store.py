"""The store: migrations, WAL, conflicts, concurrent writers, and no acknowledged label lost to SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text

from headstart.errors import LabelConflictError, LabelingError
from headstart.labeling import Store, init_project
from headstart.labeling.models import Base
from labeling_helpers import write_pool


def make_project(tmp_path, db, n=20, **options):
    return init_project(write_pool(tmp_path / "pool.csv", n), labels="neg,pos", db=db, backbone="minilm-l6",
                        **options)


def test_migrations_create_exactly_the_models(db):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    store = Store.open(db, create=True)
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        revision = MigrationContext.configure(connection).get_current_revision()
    assert revision == "0006"  # 0006: a running job's claim
    assert diff == []
    Store.open(db).close()  # a second open finds the schema current


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path):
    store = Store.open(tmp_path / "x.db", create=True)
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(LabelingError, match="no labeling project here.*headstart label init"):
        Store.open(tmp_path / "nothing.db")


def test_labels_keep_annotator_time_source_and_conflicts_are_errors(tmp_path, db):
    project = make_project(tmp_path, db)
    first = project.add("i1", "pos", annotator="ana")
    assert (first.item, first.label, first.annotator, first.source) == ("i1", "pos", "ana", "person")
    assert first.created_at is not None
    assert project.add("i1", "pos", annotator="ana").id == first.id  # the same label again: no-op
    with pytest.raises(LabelConflictError, match="already has the label 'pos' by 'ana'.*--replace"):
        project.add("i1", "neg", annotator="ben")
    assert [r.label for r in project.store.current_labels()] == ["pos"]
    corrected = project.add("i1", "neg", annotator="ben", replace=True)
    history = project.store.label_history()
    assert [(r.label, superseded is not None) for r, superseded in history] == [("pos", True), ("neg", False)]
    assert [r.id for r in project.store.current_labels()] == [corrected.id]


def test_a_person_supersedes_a_model_label(tmp_path, db):
    project = make_project(tmp_path, db)
    project.store.add_label("i2", "pos", annotator="model:v1", source="model")
    project.add("i2", "neg", annotator="ana")
    current = project.store.current_labels()
    assert [(r.label, r.source) for r in current] == [("neg", "person")]


def test_unknown_item_and_label_outside_the_set(tmp_path, db):
    project = make_project(tmp_path, db)
    with pytest.raises(LabelingError, match="unknown item id 'nope'"):
        project.add("nope", "pos")
    with pytest.raises(LabelingError, match="label 'maybe' is not in the label set.*neg, pos"):
        project.add("i1", "maybe")
    assert project.store.current_labels() == []


def test_multi_annotator_items_take_one_label_per_annotator(tmp_path, db):
    project = make_project(tmp_path, db, multi_share=1.0, annotators_per_item=2)
    project.add("i3", "pos", annotator="ana")
    project.add("i3", "neg", annotator="ben")
    with pytest.raises(LabelConflictError):
        project.add("i3", "neg", annotator="ana")
    assert sorted((r.annotator, r.label) for r in project.store.current_labels()) == [("ana", "pos"), ("ben", "neg")]


def test_concurrent_writers_to_one_item_one_wins(tmp_path, db):
    make_project(tmp_path, db)
    results, barrier = [], threading.Barrier(6)

    def write(k):
        store = Store.open(db)
        barrier.wait()
        try:
            store.add_label("i5", "pos" if k % 2 else "neg", annotator=f"a{k}")
            results.append("ok")
        except LabelConflictError:
            results.append("conflict")
        finally:
            store.close()
    threads = [threading.Thread(target=write, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["conflict"] * 5 + ["ok"]
    assert len(Store.open(db).current_labels()) == 1


BURST = """
import sys
from headstart.labeling import Store
store = Store.open(sys.argv[1])
for i in range(int(sys.argv[2])):
    store.add_label(f"i{i}", "pos" if i % 2 else "neg", annotator="burst")
    print(f"i{i}", flush=True)  # acknowledged: the label is committed
"""


@pytest.mark.subprocess
def test_sigkill_in_a_burst_loses_no_acknowledged_label(tmp_path, db):
    n = 400
    make_project(tmp_path, db, n=n)
    child = subprocess.Popen([sys.executable, "-c", BURST, db, str(n)], stdout=subprocess.PIPE, text=True,
                             cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    acknowledged = []
    deadline = time.monotonic() + 120
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acknowledged.append(line.strip())
    child.send_signal(signal.SIGKILL)  # in the middle of the burst
    acknowledged += [line.strip() for line in child.stdout.read().splitlines() if line.strip()]
    child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert 40 <= len(acknowledged) < n, "the child should be killed mid-burst"
    stored = {record.item for record in Store.open(db).current_labels()}
    assert set(acknowledged) <= stored
    assert len(stored) - len(acknowledged) <= 1  # at most the one committed but not yet printed


def test_the_engine_runs_on_both_backends(db, blob_project):
    """Retrain, predictions, auto-accept, label issues and the review queue, on SQLite and PostgreSQL."""
    import numpy as np

    from headstart.labeling.issues import label_issues
    from headstart.labeling.prelabel import prelabel
    from headstart.labeling.retrain import retrain_probe

    project, truth = blob_project(db=db, n_per_class=30, n_classes=3)
    for i in range(45):
        project.add(project.ids[i], project.classes[truth[i] if i else (truth[i] + 1) % 3], annotator="ana")
    version = retrain_probe(project)
    assert project.store.prediction_version() == version and len(project.store.predictions()) == 90
    report = prelabel(project, target_precision=0.9, accept=True, min_support=5)
    assert report["accepted"] > 0
    found = label_issues(project)
    assert project.ids[0] in {f["id"] for f in found}
    assert project.ids[0] in {e["id"] for e in project.store.review_queue()}
    project.store.resolve_review(project.store.review_queue()[0]["review_id"])
    assert len(project.store.review_queue("resolved")) == 1
    assert np.mean([r.label == project.classes[truth[project.position()[r.item]]]
                    for r in project.store.current_labels(("model",))]) >= 0.9


def test_ids_keep_counting_after_init(tmp_path, db):
    """Items and the project are inserted with explicit ids; a later insert must not collide."""
    from headstart.labeling.models import Item

    project = make_project(tmp_path, db, n=3)
    with project.store.writing() as session:
        session.add(Item(external_id="late", content="added later", content_hash="0" * 64, origin="test",
                         required_labels=1))
    assert (project.store.item_table()[-1].id, project.store.item_table()[-1].external_id) == (4, "late")
