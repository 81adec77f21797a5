"""Retraining as labels arrive: versions kept with metrics, a background thread, queued fine-tunes."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import headstart.labeling.loop_probe as loop_probe_module  # retrain_probe imports fit_loop_probe from it when called
from headstart.errors import LabelingError
from headstart.labeling import init_project
from headstart.labeling.retrain import (BackgroundRetrainer, due, finetune_due, queue_finetune, retrain_due,
                                       retrain_probe, run_jobs)


def label(project, truth, positions):
    for i in positions:
        project.add(project.ids[i], project.classes[truth[i]], annotator="ana")


def test_retrain_keeps_versions_with_metrics_and_refreshes_predictions(blob_project):
    project, truth = blob_project(retrain_every=10)
    with pytest.raises(LabelingError, match="at least (two|2) classes"):
        retrain_probe(project)
    order = np.random.default_rng(0).permutation(len(truth))
    label(project, truth, order[:9])
    assert not due(project)
    label(project, truth, order[9:12])
    assert due(project)
    v1 = retrain_probe(project)
    assert not due(project)
    label(project, truth, order[12:40])
    v2 = retrain_probe(project)
    versions = project.store.model_versions()
    assert [(v.id, v.n_labels) for v in versions] == [(v1, 12), (v2, 40)]
    assert all(0 <= v.metrics["accuracy"] <= 1 and v.status == "done" for v in versions)
    assert project.store.prediction_version() == v2
    predictions = project.store.predictions()
    right = np.mean([p[1] == project.classes[truth[i]] for i, p in enumerate(predictions)])
    assert right > 0.9


def test_a_better_fine_tune_keeps_its_pre_labels_until_a_probe_scores_higher(blob_project):
    project, truth = blob_project(retrain_every=10, finetune_every=0)
    order = np.random.default_rng(0).permutation(len(truth))
    label(project, truth, order[:20])
    retrain_probe(project)
    tuned = project.add_model_version("finetune", status="done", n_labels=20, metrics={"accuracy": 1.01})
    uniform = np.full((project.size, len(project.classes)), 1 / len(project.classes))
    project.store_predictions(tuned, uniform)
    label(project, truth, order[20:40])
    probe = retrain_probe(project)
    assert project.store.prediction_version() == tuned  # no probe scores above 101%
    assert "kept from fine-tune" in project.store.model_versions("probe")[-1].metrics["pre_labels"]
    project.update_model_version(tuned, metrics={"accuracy": 0.0})  # now any probe beats it
    label(project, truth, order[40:50])
    newer = retrain_probe(project)
    assert newer != probe and project.store.prediction_version() == newer
    assert "pre_labels" not in project.store.model_versions("probe")[-1].metrics
    project.update_model_version(tuned, metrics={"accuracy": 1.01})  # the probe took over: it keeps the pool
    label(project, truth, order[50:60])
    newest = retrain_probe(project)
    assert project.store.prediction_version() == newest


def test_a_job_cut_short_goes_back_in_the_queue(blob_project, tmp_path, monkeypatch):
    import headstart.labeling.retrain as retrain_module

    project, _ = blob_project(finetune_every=0)
    job = queue_finetune(project)

    def interrupted(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(retrain_module, "run_finetune", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_jobs(project, tmp_path)
    assert [(v.id, v.status) for v in project.model_versions("finetune")] == [(job, "queued")]

    started, release = threading.Event(), threading.Event()

    def slow(*_args):  # a fine-tune still running when the worker stops
        started.set()
        release.wait(10)

    monkeypatch.setattr(retrain_module, "run_finetune", slow)
    retrainer = BackgroundRetrainer(project, out_root=tmp_path, poll_seconds=0.05).start()
    assert started.wait(10)
    assert project.model_versions("finetune")[0].status == "running"
    retrainer.stop(timeout=0.2)
    assert project.model_versions("finetune")[0].status == "queued"  # not "running" for ever
    release.set()


def test_background_retrainer_never_holds_up_labeling(blob_project, monkeypatch):
    """The probe's fit is held until the test has labeled twenty more items: had a label waited for
    training, the fit would have ended (its hold times out) before the labels were all stored."""
    project, truth = blob_project(retrain_every=10)
    real_fit = loop_probe_module.fit_loop_probe
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def held_fit(*args, **kwargs):
        started.set()
        release.wait(timeout=60)
        try:
            return real_fit(*args, **kwargs)
        finally:
            finished.set()
    monkeypatch.setattr(loop_probe_module, "fit_loop_probe", held_fit)
    retrainer = BackgroundRetrainer(project, poll_seconds=0.2).start()
    try:
        order = np.random.default_rng(1).permutation(len(truth))
        label(project, truth, order[:10])
        retrainer.notify()
        assert started.wait(timeout=30), "the retrainer should have started"
        for i in order[10:30]:  # labels keep arriving while the probe trains
            label(project, truth, [i])
            retrainer.notify()
        assert project.count_labels() == 30
        assert not finished.is_set()  # all thirty stored while the first fit was still held
    finally:
        release.set()
        retrainer.stop()  # joins the thread: the held fit and whatever look it began are over
    retrainer.run_once()  # the look at the thirty labels, here if the thread had not taken it yet
    assert not retrainer.errors
    assert [v.n_labels for v in project.model_versions()] == [10, 30]


def test_one_retrain_lock_per_store_and_its_holders_exclude_each_other(blob_project):
    from headstart.labeling.locks import retrain_lock

    project, _ = blob_project()
    other, _ = blob_project()
    with project.retrain_lock() as first:
        with retrain_lock(project.url, blocking=False) as second:
            assert first and not second
        with other.retrain_lock(blocking=False) as elsewhere:
            assert elsewhere  # another store's lock is another lock
    with retrain_lock(project.url, blocking=False) as after:
        assert after


def test_the_background_retrainer_waits_its_turn_at_the_lock(blob_project):
    project, truth = blob_project(retrain_every=10)
    label(project, truth, range(12))
    retrainer = BackgroundRetrainer(project)  # not started: run_once is one look, in this thread
    with project.retrain_lock():  # e.g. `headstart label retrain` is training
        assert retrainer.run_once() is None and project.model_versions() == []
    assert retrainer.run_once() is not None
    assert [v.n_labels for v in project.model_versions()] == [12] and not retrainer.errors


def test_a_label_starts_a_retrain_through_the_launcher_once_due(blob_project):
    from headstart.labeling.retrain import retrain_if_due

    project, truth = blob_project(retrain_every=6)
    launched = []
    for i in range(6):
        project.add(project.ids[i], project.classes[truth[i]], annotator="ana")
        assert retrain_if_due(project, launch=launched.append) == (i == 5)
    assert launched == [project.url]


def test_a_fine_tune_is_a_queued_job(tmp_path, text_csv, tiny_bert_name):
    import csv

    rows = list(csv.DictReader(open(text_csv("topics.csv", n_per_class=10))))
    pool = tmp_path / "pool.csv"
    with open(pool, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([[r["text"]] for r in rows])
    project = init_project(pool, labels="food,sports,tech", db=tmp_path / "f.db", backbone=tiny_bert_name,
                           max_length=24)
    for index, (item, row) in enumerate(zip(project.ids, rows)):
        if index % 10:  # a few left unlabeled: the job's pool
            project.add(item, row["label"], annotator="ana")
    job = queue_finetune(project, epochs=1, strategy="staged")
    assert [(v.id, v.status, v.kind) for v in project.store.model_versions()] == [(job, "queued", "finetune")]
    project.add(project.ids[1], "tech", annotator="ana", replace=True)  # labeling goes on while it waits
    assert run_jobs(project, tmp_path / "models") == 1
    version = project.store.model_versions()[0]
    assert version.status == "done", version.error
    config = json.loads((tmp_path / "models" / f"model-v{job}" / "config.json").read_text())
    assert config["backbone"]["options"] == {"max_length": 24} and version.path  # the project's options
    assert 0 <= version.metrics["accuracy"] <= 1 and "validation" in version.metrics["accuracy_estimate"]
    assert version.n_labels == 27  # what it trained on: every settled label, none spent on a test split
    assert version.metrics["mode"] in ("probe", "finetune")  # the default mode: auto keeps one of them
    trained = json.loads((tmp_path / "models" / f"model-v{job}" / "config.json").read_text())
    assert "unlabeled" in trained  # the unlabeled items were offered to the head as a pool
    assert [path.name for path in (tmp_path / "models").iterdir()] == [f"model-v{job}"]  # no attempt folder left
    predictions = project.store.predictions()
    assert project.store.prediction_version() == job and len(predictions) == len(rows)
    assert all(p[1] in ("food", "sports", "tech") and abs(sum(p[3]) - 1) < 1e-4 for p in predictions)
    assert run_jobs(project, tmp_path / "models") == 0


def test_retrains_come_as_the_labels_grow_by_a_quarter_then_every_retrain_every_labels():
    def schedule(every: int, up_to: int = 300) -> list[int]:
        done, at_last = [], 0
        for have in range(1, up_to + 1):
            if retrain_due(have, at_last, every):
                done.append(have)
                at_last = have
        return done

    # a quarter more labels each time, at least 10 and at most 50
    assert schedule(50) == [10, 20, 30, 40, 50, 62, 77, 96, 120, 150, 187, 233, 283]
    assert schedule(6, 30) == [6, 12, 18, 24, 30]  # a smaller setting is kept from the start
    assert schedule(0) == []  # never


def test_fine_tunes_fall_due_every_finetune_every_labels_from_that_many_on():
    def schedule(every: int, up_to: int = 520) -> list[int]:
        queued, last = [], None
        for have in range(1, up_to + 1):
            if finetune_due(have, last, every):
                queued.append(have)
                last = have
        return queued

    assert schedule(100) == [100, 200, 300, 400, 500]
    assert schedule(0) == []  # only by hand
    assert finetune_due(130, 40, 100) is False and finetune_due(140, 40, 100)  # counted from the last job's labels


def test_a_probe_retrain_queues_one_fine_tune_at_a_time(blob_project):
    project, truth = blob_project(finetune_every=30)
    order = np.random.default_rng(0).permutation(len(truth))
    label(project, truth, order[:20])
    retrain_probe(project)
    assert project.model_versions("finetune") == []  # fewer than 30 labels
    label(project, truth, order[20:30])
    retrain_probe(project)
    jobs = project.model_versions("finetune")
    assert [v.kind for v in project.model_versions()] == ["probe", "probe", "finetune"]
    assert [(j.status, j.n_labels) for j in jobs] == [("queued", 30)]
    label(project, truth, order[30:70])
    retrain_probe(project)  # 40 more labels, but the first job still waits: no second one
    assert len(project.model_versions("finetune")) == 1
    project.update_model_version(jobs[0].id, status="failed", error="out of memory")
    retrain_probe(project)  # a failed job does not count: the next retrain queues again
    assert [(v.status, v.n_labels) for v in project.model_versions("finetune")] == [("failed", 30), ("queued", 70)]


def test_a_project_can_keep_fine_tunes_to_its_people(blob_project):
    project, truth = blob_project(finetune_every=0)
    label(project, truth, range(len(truth)))
    retrain_probe(project)
    assert [v.kind for v in project.model_versions()] == ["probe"]
