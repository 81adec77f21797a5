"""Data helpers of the labeling tests (imported by the tests and their conftest)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np


# -- data -----------------------------------------------------------------------------------------

def blobs(n_per_class: int = 40, n_classes: int = 3, dim: int = 16, spread: float = 0.6, seed: int = 0):
    """Features in well-separated clusters, one per class: (features (n, dim) float32, labels (n,))."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(n_classes, dim))
    labels = np.repeat(np.arange(n_classes), n_per_class)
    features = centres[labels] + rng.normal(0, spread, size=(len(labels), dim))
    order = rng.permutation(len(labels))
    return features[order].astype(np.float32), labels[order]


def write_pool(path: Path, n: int, *, ids: bool = True, labels: dict | None = None) -> Path:
    """A CSV pool of ``n`` distinct texts with ids ``i0..``; ``labels`` {position: label} fills a label column."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow((["id"] if ids else []) + ["text"] + (["label"] if labels else []))
        for i in range(n):
            writer.writerow(([f"i{i}"] if ids else []) + [f"item number {i}"]
                            + ([labels.get(i, "")] if labels else []))
    return path


def pool_from_labeled(labeled_csv: Path, path: Path) -> dict[str, str]:
    """Write the texts of a labeled CSV as an unlabeled pool with ids ``t0..``; return {id: true label}."""
    with open(labeled_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows([[f"t{i}", row["text"]] for i, row in enumerate(rows)])
    return {f"t{i}": row["label"] for i, row in enumerate(rows)}


REPO = Path(__file__).resolve().parents[2]


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` as a module (its own imports of ``benchmarks/common`` resolved)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def store_at_revision(db: str, revision: str, *statements: tuple[str, dict]) -> None:
    """A store created by the migrations up to ``revision`` only, with ``statements`` (SQL, parameters)
    run on it: an older project's database, for tests of the migrations after it."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from headstart.labeling.database import MIGRATIONS, database_url

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(database_url(db))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        for sql, parameters in statements:
            connection.execute(text(sql), parameters)
    engine.dispose()
