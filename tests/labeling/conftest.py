# System package for the PostgreSQL tests (add to scripts/setup.sh): Debian's `postgresql`
#     apt-get install -y postgresql
# It gives initdb/pg_ctl (under /usr/lib/postgresql/<version>/bin). The store tests run against a
# throwaway cluster started here; without the binaries they skip with that reason.
"""Fixtures of the labeling tests: a store URL for SQLite and for a real PostgreSQL server,
random features in clusters, and small pools."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from labeling_helpers import blobs, write_pool

PG_REASON = ("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's 'postgresql' package "
             "(apt-get install -y postgresql)")


def _pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _demote():
    """PostgreSQL refuses to run as root: as root, run its programs as the 'postgres' (or 'nobody') user."""
    if os.geteuid() != 0:
        return None, None
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue

        def preexec(uid=user.pw_uid, gid=user.pw_gid):
            os.setgid(gid)
            os.setuid(uid)
        return preexec, user
    return None, None


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster (initdb + pg_ctl in a temporary folder, trust auth, fsync off);
    yields the URL of its ``postgres`` database. Skips with the reason where PostgreSQL is absent."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip(PG_REASON)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("the psycopg package is not installed (pip install 'psycopg[binary]')")
    preexec, user = _demote()
    root = Path(tempfile.mkdtemp(prefix="headstart-pg-"))
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = root / "data", _free_port()
    run = lambda *args: subprocess.run([str(bindir / args[0]), *args[1:]], preexec_fn=preexec, check=True,  # noqa: E731
                                       capture_output=True, text=True, cwd=root, timeout=120)
    try:
        run("initdb", "-D", str(data), "-U", "headstart", "--auth=trust", "-E", "UTF8", "--no-sync",
            "--locale=C")
        run("pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    except subprocess.CalledProcessError as error:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL cluster: {error.stderr or error.stdout}")
    try:
        yield f"postgresql://headstart@127.0.0.1:{port}"
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], preexec_fn=preexec,
                       capture_output=True, cwd=root, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database on the throwaway server."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> str:
    """Where a store lives: a SQLite file, then a PostgreSQL database (skipped where absent)."""
    if request.param == "sqlite":
        return str(tmp_path / "labels.db")
    return request.getfixturevalue("postgres_url")


# -- projects -------------------------------------------------------------------------------------

@pytest.fixture
def blob_project(tmp_path):
    """``blob_project(db=None, n_per_class=40, n_classes=3, **init_options)``: a project over a pool of
    texts whose features are injected blobs; returns (project, true class ids)."""
    from headstart.labeling import init_project
    from headstart.labeling.project import LabelingProject

    def make(db: str | None = None, n_per_class: int = 40, n_classes: int = 3, seed: int = 0, **options):
        features, truth = blobs(n_per_class, n_classes, seed=seed)
        pool = write_pool(tmp_path / f"pool-{uuid.uuid4().hex[:6]}.csv", len(truth))
        classes = [f"c{k}" for k in range(n_classes)]
        project = init_project(pool, labels=classes, db=db or str(tmp_path / f"{uuid.uuid4().hex[:6]}.db"),
                               backbone="minilm-l6", **options)
        return LabelingProject(project.store, features=features), truth
    return make
