"""Model-assisted labeling: a store of labels, pre-labels, active learning, label quality, retraining.

    from headstart.labeling import init_project, open_project
    project = init_project("pool.csv", labels="neg,pos", db="labels.db")
    batch = project.next(20)                        # the items most worth a person's time
    project.add(batch[0]["id"], "pos", annotator="ana")

Modules, one concept each: ``models`` and ``store`` (SQL store, Alembic ``migrations``), ``project``
(a pool and a label set; ``project_init`` creates one), ``strategies`` (active learning), ``prelabel``
(auto-accept at a target precision), ``retrain``, ``issues`` (confident learning), ``agreement``
(several annotators), ``exchange`` (CSV/JSONL and Label Studio), ``locks`` (one retrain at a time),
``users`` and ``web`` (the page). Code outside ``project`` and ``store`` talks to a
:class:`LabelingProject`, never to its store.
"""

from headstart.lazy import lazy_attributes

# The names load on first use (PEP 562): `headstart label --help` and the rest of headstart import
# this package without its store (SQLAlchemy, Alembic), which comes with the ``label`` extra.
_LAZY = {
    "DEFAULT_DB": "headstart.labeling.project", "ItemRow": "headstart.labeling.store",
    "LabelRecord": "headstart.labeling.store", "LabelingProject": "headstart.labeling.project",
    "Store": "headstart.labeling.store", "init_project": "headstart.labeling.project_init",
    "open_project": "headstart.labeling.project", "read_pool": "headstart.labeling.pool",
    "DEFAULT_STRATEGY": "headstart.labeling.strategies", "STRATEGIES": "headstart.labeling.strategies",
    "select": "headstart.labeling.strategies",
}
__all__ = ["DEFAULT_DB", "DEFAULT_STRATEGY", "ItemRow", "LabelRecord", "LabelingProject", "STRATEGIES", "Store",
           "init_project", "open_project", "read_pool", "select"]
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
