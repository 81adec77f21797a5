"""The served project runs its queued fine-tunes (into a folder, beside the probe's retrains), unless
told not to; the admin page says which; `headstart label serve --out/--no-run-jobs` set it."""

from __future__ import annotations

import threading
import time

import numpy as np
from typer.testing import CliRunner

import headstart.labeling.retrain as retrain_module
from headstart.cli import app as cli_app
from headstart.labeling.retrain import BackgroundRetrainer, queue_finetune


def fast(project, out_root=None):
    """The server's retrainer, looking every 50 ms instead of every 5 s."""
    return BackgroundRetrainer(project, out_root=out_root, poll_seconds=0.05)


def wait_for(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_the_server_runs_a_queued_fine_tune_into_its_folder(make_web, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    ran = []

    def finetune(project, version, out_root):  # stands in for training: the folder it was given, and done
        ran.append(out_root)
        project.update_model_version(version.id, status="done", path=str(out_root / f"model-v{version.id}"))

    monkeypatch.setattr(retrain_module, "run_finetune", finetune)
    models = tmp_path / "models"
    web = make_web(seeded=6, retrain=True, finetune_out=models, retrainer=fast)
    job = queue_finetune(web.project)
    web.sign_in("admin")
    page = web.client.get("/admin").text
    assert 'id="queued-finetune"' in page and "this server trains it" in page and "retrain --watch" not in page
    with TestClient(web.app, base_url="http://127.0.0.1"):  # runs the app's startup: the retrainer
        assert wait_for(lambda: web.project.model_versions("finetune")[0].status == "done")
        assert web.app.state.retrainer.errors == []
    assert ran == [models]
    assert web.project.model_versions("finetune")[0].path == str(models / f"model-v{job}")


def test_a_server_told_not_to_leaves_fine_tunes_to_a_worker(make_web, monkeypatch):
    from fastapi.testclient import TestClient

    ran = []
    monkeypatch.setattr(retrain_module, "run_finetune", lambda _project, version, _out: ran.append(version.id))
    web = make_web(seeded=6, retrain=True, finetune_out=None, retrainer=fast)
    queue_finetune(web.project)
    web.sign_in("admin")
    page = web.client.get("/admin").text
    assert "this server runs none" in page and "headstart label retrain --watch" in page
    with TestClient(web.app, base_url="http://127.0.0.1"):
        time.sleep(0.3)  # six looks of the retrainer
        assert web.app.state.retrainer.out_root is None and web.app.state.retrainer.errors == []
    assert ran == [] and web.project.model_versions("finetune")[0].status == "queued"


def test_the_probe_keeps_retraining_while_a_fine_tune_runs(blob_project, tmp_path, monkeypatch):
    """A fine-tune takes minutes to hours: the probe must not wait for it to follow the labels."""
    project, truth = blob_project(retrain_every=10, finetune_every=0)
    started, release = threading.Event(), threading.Event()

    def held(project, version, _out_root):
        started.set()
        release.wait(20)
        project.update_model_version(version.id, status="done")

    monkeypatch.setattr(retrain_module, "run_finetune", held)
    queue_finetune(project)
    retrainer = fast(project, tmp_path / "models").start()
    try:
        assert started.wait(20)
        for i in np.random.default_rng(0).permutation(len(truth))[:12]:
            project.add(project.ids[i], project.classes[truth[i]], annotator="ana")
        retrainer.notify()
        assert wait_for(lambda: retrainer.versions)  # a probe version while the fine-tune still runs
        assert project.model_versions("finetune")[0].status == "running"
    finally:
        release.set()
        retrainer.stop()
    assert retrainer.errors == [] and project.model_versions("finetune")[0].status == "done"


def test_serve_passes_the_fine_tune_folder_or_none(monkeypatch, tmp_path):
    import uvicorn

    import headstart.labeling.cli as label_cli
    import headstart.labeling.web as web_package

    class Project:
        size = 0

        def features(self):
            return None

    made = []
    monkeypatch.setattr(label_cli, "_open", lambda _db: Project())
    monkeypatch.setattr(web_package, "create_app", lambda project, **options: made.append(options))
    monkeypatch.setattr(uvicorn, "run", lambda *_args, **_kwargs: None)
    runner = CliRunner()
    assert runner.invoke(cli_app, ["label", "serve", "--out", str(tmp_path / "m")]).exit_code == 0
    assert runner.invoke(cli_app, ["label", "serve"]).exit_code == 0
    assert runner.invoke(cli_app, ["label", "serve", "--no-run-jobs"]).exit_code == 0
    assert [options["finetune_out"] for options in made] == [tmp_path / "m", label_cli.FINETUNE_OUT.default, None]
