"""Connecting to the labeling database: URLs, SQLite's settings, and the schema's migrations.

Durability: SQLite runs in WAL mode with ``synchronous=FULL``, so a label is on disk when its
transaction commits; a process killed right after loses nothing it acknowledged. Write transactions
on SQLite start with ``BEGIN IMMEDIATE`` (a second writer waits for the lock instead of failing
half-way); readers never block writers (WAL). The schema comes from the Alembic migrations.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_MS = 30_000


def database_url(where: str | Path) -> str:
    """A SQLAlchemy URL from a path (SQLite) or a URL; ``postgresql://`` uses psycopg 3."""
    text = str(where)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().absolute()}"
    if text.startswith("postgresql://") or text.startswith("postgres://"):
        return "postgresql+psycopg://" + text.split("://", 1)[1]
    return text


def sqlite_engine(url: str, immediate: bool) -> Engine:
    """A SQLite engine in WAL mode with full sync, foreign keys, a busy wait, and our own BEGIN."""
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (pysqlite's own is deferred)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def migrate(engine: Engine) -> None:
    """Bring the database's schema to the newest migration (Alembic, run in-process)."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.begin() as connection:
        if MigrationContext.configure(connection).get_current_revision() == head:
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
