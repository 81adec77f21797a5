"""A job's result counts only under the claim that ran it; a probe's pre-labels never overwrite those of a
better fine-tune that finished while the probe was writing."""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import timedelta

import numpy as np
import pytest

import headstart.labeling.retrain as retrain_module
from headstart.labeling.heartbeat import STALE_SECONDS, beat, requeue_dead_jobs
from headstart.labeling.models import utcnow
from headstart.labeling.retrain import (JOB_NICENESS, BackgroundRetrainer, predict_pool, queue_finetune,
                                       retrain_probe)
from headstart.learn.head import LinearHead


def label(project, truth, positions):
    for i in positions:
        project.add(project.ids[i], project.classes[truth[i]], annotator="ana")


def taken_over(project):
    """A job claimed by a worker thought dead (silent past the stale limit), then by a second worker:
    (the first run's row, the second's)."""
    queue_finetune(project)
    first = project.claim_job()
    later = utcnow() + timedelta(seconds=STALE_SECONDS + 1)
    assert requeue_dead_jobs(project.store, now=later) == [first.id]
    second = project.claim_job()
    assert second.id == first.id and second.claim != first.claim
    return first, second


def test_of_two_runs_of_a_job_the_one_holding_it_records_its_result(blob_project, db):
    project, _ = blob_project(db=db, finetune_every=0)
    first, second = taken_over(project)
    published = []
    sure = np.eye(len(project.classes))[np.arange(project.size) % len(project.classes)]
    assert project.finish_job(second, "done", path="second", metrics={"accuracy": 0.9},
                              predictions=(project.classes, sure), publish=lambda: published.append("second"))
    # The first worker comes back and finishes too: nothing of it is kept.
    flat = np.full((project.size, len(project.classes)), 1 / len(project.classes))
    assert not project.finish_job(first, "done", path="first", metrics={"accuracy": 0.1},
                                  predictions=(project.classes, flat), publish=lambda: published.append("first"))
    assert not project.finish_job(first, "failed", error="a late error")
    [version] = project.model_versions("finetune")
    assert (version.status, version.path, version.metrics["accuracy"], version.error) == ("done", "second", 0.9, None)
    assert published == ["second"]
    stored = project.store.predictions()
    assert {row[4] for row in stored} == {second.id} and [row[2] for row in stored] == [1.0] * project.size


def test_a_stale_run_can_neither_requeue_nor_keep_alive_the_run_that_replaced_it(blob_project, db):
    project, _ = blob_project(db=db, finetune_every=0)
    first, second = taken_over(project)
    assert not project.give_back_job(first)
    assert not beat(project.store, first.id, first.claim)  # its heartbeat thread stops beating
    assert project.model_versions("finetune")[0].status == "running"
    assert beat(project.store, second.id, second.claim)
    assert project.give_back_job(second)
    [version] = project.model_versions("finetune")
    assert (version.status, version.claim) == ("queued", None)


def test_a_job_given_back_by_a_stopping_worker_is_not_finished_by_its_thread(blob_project, tmp_path, monkeypatch):
    project, _ = blob_project(finetune_every=0)
    queue_finetune(project)
    started, release, finished = threading.Event(), threading.Event(), []

    def slow(project, version, _out_root):  # a fine-tune the stop does not wait for
        started.set()
        release.wait(10)
        finished.append(project.finish_job(version, "done", metrics={"accuracy": 0.5}))

    monkeypatch.setattr(retrain_module, "run_finetune", slow)
    retrainer = BackgroundRetrainer(project, out_root=tmp_path, poll_seconds=0.05)
    retrainer.start()
    assert started.wait(10)
    retrainer.stop(timeout=0.2)
    release.set()
    retrainer._jobs_thread.join(10)
    assert finished == [False]
    assert project.model_versions("finetune")[0].status == "queued"  # the next worker runs it from the start


def finished_finetune(project, accuracy: float) -> int:
    """A fine-tune job run to the end now, its uniform pre-labels replacing the pool's."""
    queue_finetune(project)
    job = project.claim_job()
    flat = np.full((project.size, len(project.classes)), 1 / len(project.classes))
    assert project.finish_job(job, "done", metrics={"accuracy": accuracy}, predictions=(project.classes, flat))
    return job.id


def test_a_better_fine_tune_finishing_mid_pre_labelling_keeps_the_pool(blob_project, monkeypatch):
    project, truth = blob_project(retrain_every=10, finetune_every=0)
    label(project, truth, np.random.default_rng(0).permutation(len(truth))[:30])
    retrain_probe(project)
    head = LinearHead.from_bytes(project.store.model_versions("probe")[-1].weights)
    tuned = {}
    real_chunk = project.store_prediction_chunk

    def chunk_then_finetune(*args, **kwargs):  # the fine-tune lands right after the probe's first chunk
        written = real_chunk(*args, **kwargs)
        if not tuned:
            tuned["id"] = finished_finetune(project, accuracy=0.99)
        return written

    monkeypatch.setattr(project, "store_prediction_chunk", chunk_then_finetune)
    newer = project.add_model_version("probe", status="done", metrics={"accuracy": 0.6})
    assert predict_pool(project, newer, head, chunk=30, unless_finetune_above=0.6) == 30
    stored = project.store.predictions()
    assert len(stored) == project.size and {row[4] for row in stored} == {tuned["id"]}


def test_a_worse_fine_tune_does_not_stop_a_better_probe(blob_project):
    project, truth = blob_project(retrain_every=10, finetune_every=0)
    label(project, truth, np.random.default_rng(0).permutation(len(truth))[:30])
    finished_finetune(project, accuracy=0.2)
    probe = retrain_probe(project)
    stored = project.store.predictions()
    assert len(stored) == project.size and {row[4] for row in stored} == {probe}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice value is Linux's")
def test_the_servers_jobs_thread_runs_below_the_requests_priority(blob_project, tmp_path, monkeypatch):
    project, _ = blob_project(finetune_every=0)
    queue_finetune(project)
    seen = []

    def record_priority(project, version, _out_root):
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        project.finish_job(version, "done", metrics={"accuracy": 0.5})

    monkeypatch.setattr(retrain_module, "run_finetune", record_priority)
    retrainer = BackgroundRetrainer(project, out_root=tmp_path, poll_seconds=0.05).start()
    try:
        for _ in range(200):
            if seen:
                break
            time.sleep(0.05)
    finally:
        retrainer.stop(timeout=5)
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen == [min(19, here + JOB_NICENESS)]  # the thread serving requests keeps its own
