"""`headstart label user add|token|list` and `headstart label serve` (its options; serving is tested
through the app itself)."""

from __future__ import annotations

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
    assert bad_role.exit_code == 2 and "unknown role 'boss'" in bad_role.output and "admin" in bad_role.output
    bad_name = invoke("label", "user", "add", "no spaces", "--db", db)
    assert bad_name.exit_code == 2 and "user name 'no spaces' is not allowed" in bad_name.output
    invoke("label", "user", "add", "ana", "--db", db)
    taken = invoke("label", "user", "add", "ana", "--db", db)
    assert taken.exit_code == 2 and "exists already" in taken.output


def test_serve_listens_on_loopback_by_default():
    result = invoke("label", "serve", "--help")
    assert result.exit_code == 0
    assert "127.0.0.1" in result.output and "--port" in result.output and "--no-retrain" in result.output
