"""Model-assisted labeling: a store of labels, pre-labels, active learning, label quality, retraining.

    from headstart.labeling import init_project, open_project
    project = init_project("pool.csv", labels="neg,pos", db="labels.db")
    batch = project.next(20)                        # the items most worth a person's time
    project.add(batch[0]["id"], "pos", annotator="ana")

Modules, one concept each: ``models`` and ``store`` (SQL store, Alembic ``migrations``), ``project``
(a pool and a label set), ``strategies`` (active learning), ``prelabel`` (auto-accept at a target
precision), ``retrain``, ``issues`` (confident learning), ``agreement`` (several annotators) and
``exchange`` (CSV/JSONL and Label Studio).
"""

from headstart.labeling.project import DEFAULT_DB, LabelingProject, init_project, open_project, read_pool
from headstart.labeling.store import LabelRecord, Store
from headstart.labeling.strategies import DEFAULT_STRATEGY, STRATEGIES, select

__all__ = ["DEFAULT_DB", "DEFAULT_STRATEGY", "LabelRecord", "LabelingProject", "STRATEGIES", "Store", "init_project",
           "open_project", "read_pool", "select"]
