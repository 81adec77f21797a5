"""A throwaway PostgreSQL cluster for the labeling tests and benchmarks/label_load.py: initdb and
pg_ctl in a temporary folder, loopback only, trust authentication, fsync off (nothing in it is
meant to outlive the run). A test helper, not part of the package: the tests import it as
``pgcluster`` (this folder is on their path), the benchmark puts this folder on ``sys.path``.

    cluster = PostgresCluster()
    url = cluster.start()          # postgresql://headstart@127.0.0.1:PORT ; raises PostgresUnavailable
    database = cluster.new_database()
    cluster.stop()

It needs Debian's ``postgresql`` package (initdb and pg_ctl under /usr/lib/postgresql/<version>/bin).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

from headstart.errors import HeadstartError

INSTALL = ("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's 'postgresql' package "
           "(apt-get install -y postgresql)")


class PostgresUnavailable(HeadstartError):
    """No PostgreSQL binaries or driver, or the cluster would not start."""


def bindir() -> Path | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def free_port() -> int:
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


class PostgresCluster:
    def __init__(self):
        self.bindir = bindir()
        self.root: Path | None = None
        self.url: str | None = None
        self._preexec = None

    def _run(self, *args: str):
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], preexec_fn=self._preexec, check=True,
                              capture_output=True, text=True, cwd=self.root, timeout=120)

    def start(self) -> str:
        """Start the cluster; returns the server's URL (no database name)."""
        if self.bindir is None:
            raise PostgresUnavailable(INSTALL)
        try:
            import psycopg  # noqa: F401
        except ImportError as error:
            raise PostgresUnavailable("the psycopg package is not installed", fix="pip install 'psycopg[binary]'") \
                from error
        self._preexec, user = _demote()
        self.root = Path(tempfile.mkdtemp(prefix="headstart-pg-"))
        if user is not None:
            os.chown(self.root, user.pw_uid, user.pw_gid)
        data, port = self.root / "data", free_port()
        try:
            self._run("initdb", "-D", str(data), "-U", "headstart", "--auth=trust", "-E", "UTF8", "--no-sync",
                      "--locale=C")
            self._run("pg_ctl", "-D", str(data), "-l", str(self.root / "log"), "-w", "-t", "60", "-o",
                      f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        except subprocess.CalledProcessError as error:
            shutil.rmtree(self.root, ignore_errors=True)
            raise PostgresUnavailable(f"could not start a PostgreSQL cluster: {error.stderr or error.stdout}") \
                from error
        self.url = f"postgresql://headstart@127.0.0.1:{port}"
        return self.url

    def new_database(self) -> str:
        """A fresh, empty database on the cluster; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return f"{self.url}/{name}"

    def stop(self) -> None:
        if self.root is None:
            return
        subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"],
                       preexec_fn=self._preexec, capture_output=True, cwd=self.root, timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
