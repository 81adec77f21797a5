"""Fixtures of the labeling tests: a store URL for SQLite and for a real PostgreSQL server,
random features in clusters, and small pools.

The PostgreSQL tests need Debian's ``postgresql`` package (scripts/setup.sh installs it): initdb and
pg_ctl start a throwaway cluster (``pgcluster.py`` here, shared with benchmarks/label_load.py);
without them they skip with that reason. They carry the ``server`` marker: ``-m "not server"``
leaves them out.
"""

from __future__ import annotations

import uuid

import pytest

from labeling_helpers import blobs, write_pool


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster (``pgcluster.PostgresCluster``), started once.
    Skips with the reason where PostgreSQL is absent."""
    from pgcluster import PostgresCluster, PostgresUnavailable

    cluster = PostgresCluster()
    try:
        cluster.start()
    except PostgresUnavailable as error:
        pytest.skip(str(error))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database on the throwaway server."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
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
