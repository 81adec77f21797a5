"""A running job's heartbeat: a job whose worker was killed is queued again and run; a live one is left alone;
the 0005 migration gives a store's running jobs a heartbeat."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import text

import headstart.labeling.retrain as retrain_module
from headstart.labeling import Store, init_project
from headstart.labeling.heartbeat import STALE_SECONDS, requeue_dead_jobs
from headstart.labeling.models import utcnow
from headstart.labeling.retrain import queue_finetune, queue_finetune_if_due, run_jobs
from labeling_helpers import store_at_revision, write_pool


def running(project, job: int, silent_for: float) -> None:
    """Mark ``job`` taken by a worker whose last heartbeat was ``silent_for`` seconds ago."""
    assert project.claim_job().id == job
    project.update_model_version(job, heartbeat_at=utcnow() - timedelta(seconds=silent_for))


def fake_finetune(ran: list):
    def finetune(project, version, _out_root):
        ran.append(version.id)
        project.update_model_version(version.id, status="done", metrics={**version.metrics, "accuracy": 0.5})
    return finetune


def test_a_job_whose_worker_died_is_queued_again_and_run(blob_project, tmp_path, monkeypatch):
    project, _ = blob_project(finetune_every=0)
    job = queue_finetune(project)
    running(project, job, silent_for=STALE_SECONDS + 60)  # e.g. its worker got SIGKILL an hour into it
    ran = []
    monkeypatch.setattr(retrain_module, "run_finetune", fake_finetune(ran))
    assert run_jobs(project, tmp_path) == 1 and ran == [job]
    [version] = project.model_versions("finetune")
    assert version.status == "done"
    [note] = version.metrics["requeued"]  # the record says it was restarted, and why
    assert "queued again: no heartbeat since" in note and "its worker died" in note


def test_a_job_with_a_fresh_heartbeat_is_left_running(blob_project, tmp_path, monkeypatch):
    project, _ = blob_project(finetune_every=0)
    job = queue_finetune(project)
    running(project, job, silent_for=STALE_SECONDS - 60)  # a live worker, between two beats
    monkeypatch.setattr(retrain_module, "run_finetune", fake_finetune([]))
    assert run_jobs(project, tmp_path) == 0
    assert requeue_dead_jobs(project.store) == []
    [version] = project.model_versions("finetune")
    assert version.status == "running" and "requeued" not in version.metrics


def test_a_dead_job_no_longer_blocks_the_next_fine_tune(blob_project):
    """Before heartbeats a killed job stayed "running" and no fine-tune was ever queued again."""
    project, truth = blob_project(finetune_every=30)
    for i in range(30):
        project.add(project.ids[i], project.classes[truth[i]], annotator="ana")
    job = queue_finetune(project)
    running(project, job, silent_for=60)
    assert queue_finetune_if_due(project) is None  # alive: one at a time
    assert project.model_versions("finetune")[0].status == "running"
    project.update_model_version(job, heartbeat_at=utcnow() - timedelta(seconds=STALE_SECONDS + 1))
    assert queue_finetune_if_due(project) is None  # the dead one is back in the queue: no second one
    assert [(v.id, v.status) for v in project.model_versions("finetune")] == [(job, "queued")]
    project.update_model_version(job, status="running", heartbeat_at=None)  # e.g. marked running by hand
    assert requeue_dead_jobs(project.store) == [job]  # no heartbeat at all counts as dead


def test_the_heartbeat_is_renewed_while_the_job_runs(blob_project, tmp_path, monkeypatch):
    project, _ = blob_project(finetune_every=0)
    queue_finetune(project)
    monkeypatch.setattr(retrain_module, "HEARTBEAT_SECONDS", 0.02)
    beats = []

    def long_job(project, version, _out_root):  # a fine-tune that runs past several beats
        claimed = project.model_versions("finetune")[0].heartbeat_at  # as stored (SQLite: naive UTC)
        for _ in range(500):
            now = project.model_versions("finetune")[0].heartbeat_at
            if now > (beats[-1] if beats else claimed):  # a new beat, not the last one read again
                beats.append(now)
                if len(beats) == 3:
                    break
            threading.Event().wait(0.01)
        project.update_model_version(version.id, status="done")

    monkeypatch.setattr(retrain_module, "run_finetune", long_job)
    assert run_jobs(project, tmp_path) == 1
    assert len(beats) == 3 and beats[-1] > beats[0]
    stale = utcnow() + timedelta(seconds=STALE_SECONDS + 1)  # long after: a finished job is never requeued
    assert requeue_dead_jobs(project.store, now=stale) == []


def test_a_0004_store_upgrades_and_its_running_job_gets_a_heartbeat(tmp_path, db):
    """The 0005 migration adds the column to a store with jobs (SQLite and PostgreSQL); a job running
    then gets one beat, so it is not queued again at once (its worker may be alive) but is once stale."""
    insert = "INSERT INTO model_versions (kind, status, n_labels, metrics, created_at) " \
             "VALUES ('finetune', :status, 0, '{}', CURRENT_TIMESTAMP)"
    store_at_revision(db, "0004", *((insert, {"status": status}) for status in ("running", "queued")))
    store = Store.open(db, create=True)
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"
    beats = {v.status: v.heartbeat_at for v in store.model_versions()}
    assert beats["queued"] is None and beats["running"] is not None
    assert requeue_dead_jobs(store) == []
    assert requeue_dead_jobs(store, now=utcnow() + timedelta(seconds=STALE_SECONDS + 1)) == [1]
    store.close()


def test_a_stale_job_is_queued_again_once_by_two_looks(tmp_path):
    project = init_project(write_pool(tmp_path / "pool.csv", 4), labels="neg,pos", db=tmp_path / "x.db",
                           backbone="minilm-l6", finetune_every=0)
    job = queue_finetune(project)
    running(project, job, silent_for=STALE_SECONDS * 2)
    assert requeue_dead_jobs(project.store) == [job] and requeue_dead_jobs(project.store) == []
    assert len(project.model_versions("finetune")[0].metrics["requeued"]) == 1
