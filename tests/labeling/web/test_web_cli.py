"""`headstart label user add|token|list` and `headstart label serve` (its options; serving is tested
through the app itself)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from headstart.cli import app
from headstart.labeling.users import authenticate

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_user_add_prints_a_token_once_and_stores_only_its_hash(blob_project):
    project, _ = blob_project(n_per_class=2)
    db = project.store.where
    result = invoke("label", "user", "add", "ana", "--role", "reviewer", "--db", db)
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert authenticate(project.store, token).role == "reviewer"
    with project.store.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT token_hash FROM users WHERE name = 'ana'").scalar()
    assert stored != token and len(stored) == 64
    assert invoke("label", "user", "list", "--db", db).output.strip() == "ana\treviewer"
    fresh = invoke("label", "user", "token", "ana", "--db", db).output.strip()
    assert authenticate(project.store, token) is None and authenticate(project.store, fresh).name == "ana"


def test_user_add_errors_name_the_field(blob_project):
    project, _ = blob_project(n_per_class=2)
    db = project.store.where
    bad_role = invoke("label", "user", "add", "ana", "--role", "boss", "--db", db)
    assert bad_role.exit_code == 2 and "'boss' is not one of" in bad_role.output and "admin" in bad_role.output
    bad_name = invoke("label", "user", "add", "no spaces", "--db", db)
    assert bad_name.exit_code == 2 and "user name 'no spaces' is not allowed" in bad_name.output
    invoke("label", "user", "add", "ana", "--db", db)
    taken = invoke("label", "user", "add", "ana", "--db", db)
    assert taken.exit_code == 2 and "exists already" in taken.output


def test_serve_refuses_an_unknown_strategy_before_it_starts(blob_project):
    project, _ = blob_project(n_per_class=2)
    result = invoke("label", "serve", "--strategy", "psychic", "--db", project.store.where)
    assert result.exit_code == 2 and "'psychic' is not one of" in result.output


def test_serve_listens_on_loopback_by_default():
    result = invoke("label", "serve", "--help")
    assert result.exit_code == 0
    assert "127.0.0.1" in result.output and "--port" in result.output and "--no-retrain" in result.output


@pytest.mark.subprocess
@pytest.mark.server
def test_serve_starts_the_page_with_one_command(tmp_path, tiny_bert_name):
    """`headstart label serve` on a project of a real (tiny) backbone: features, sign-in page, a batch."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx
    from labeling_helpers import write_pool

    from headstart.labeling import init_project
    from pgcluster import free_port
    from headstart.labeling.users import add_user

    db = str(tmp_path / "p.db")
    store = init_project(write_pool(tmp_path / "pool.csv", 8), labels="neg,pos", db=db, backbone=tiny_bert_name).store
    token = add_user(store, "ana", "annotator")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "headstart.cli", "label", "serve", "--port", str(port), "--db", db],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/login", timeout=1.0)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.2)
        assert response.status_code == 200 and "Sign in" in response.text
        assert httpx.get(f"http://127.0.0.1:{port}/api/status").status_code == 401
        batch = httpx.get(f"http://127.0.0.1:{port}/api/next?n=3", headers={"Authorization": f"Bearer {token}"},
                          timeout=30.0)
        assert batch.status_code == 200 and len(batch.json()["items"]) == 3
    finally:
        os.kill(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    assert "features of 8 items" in output and f"http://127.0.0.1:{port}/" in output
