"""The job queue's claims: a job's result counts only if the worker that finishes it still holds it.

    job = claim(store)                                  # the oldest queued job, now running, with a fresh claim
    finish(store, job.id, job.claim, "done", path=..., predictions=(classes, proba), publish=move_folder)
    give_back(store, job.id, job.claim)                 # interrupted: queued again, if it is still ours

A job can outlive its claim: a worker silent for :data:`~headstart.labeling.heartbeat.STALE_SECONDS`
(a database away that long) has its job queued again and another worker runs it; a worker stopped by
``BackgroundRetrainer.stop`` gives its job back while its thread may still be finishing. Each claim
is a new random token, and only the run holding the job's current claim records a result: an older
run's "done", pre-labels and model folder are dropped (:func:`finish` returns False), and it cannot
queue again a job that another worker runs (:func:`give_back`). Checking the claim and writing the
result happen in one transaction, as the claim itself does.

Pre-labels follow one rule, here too: a finished fine-tune's pre-labels stay while it scored above the
newest probe (:func:`~headstart.labeling.prelabel_rows.serving_finetune`). A probe that began
pre-labelling before a better fine-tune finished stops at its next chunk instead of overwriting it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from headstart.labeling.models import ModelVersion, utcnow
from headstart.labeling.prelabel_rows import labels_and_confidences, replace_all_predictions

if TYPE_CHECKING:
    from headstart.labeling.store import Store


def claim(store: Store, kind: str | None = None) -> ModelVersion | None:
    """The oldest queued job (of ``kind``), marked running under a new claim in the same transaction
    (one worker gets it); None when none is queued."""
    with store.writing() as session:
        query = select(ModelVersion).where(ModelVersion.status == "queued").order_by(ModelVersion.id)
        if kind:
            query = query.where(ModelVersion.kind == kind)
        if store.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job = session.scalars(query).first()
        if job is not None:  # alive from the start (labeling.heartbeat)
            job.status, job.heartbeat_at, job.claim = "running", utcnow(), uuid.uuid4().hex
        return job


def _held(session: Session, store: Store, job: int, token: str) -> ModelVersion | None:
    """The job's row, locked for this transaction, when ``token`` still holds it; else None."""
    query = select(ModelVersion).where(ModelVersion.id == job)
    if store.dialect == "postgresql":
        query = query.with_for_update()
    row = session.scalars(query).first()
    return row if row is not None and row.status == "running" and row.claim == token else None


def finish(store: Store, job: int, token: str, status: str, *,
           predictions: tuple[Sequence[str], np.ndarray] | None = None,
           publish: Callable[[], None] | None = None, **values) -> bool:
    """Mark ``job`` ``status`` ("done" or "failed") with ``values``, if ``token`` still holds it.

    In the same transaction, and only then: ``publish()`` (moving the model folder into place: two
    runs of a job write the same folder) and the pool's pre-labels replaced by ``predictions``
    (classes, probabilities in item order). Returns False when another claim holds the job, or none
    does (queued again, finished): nothing is written.
    """
    with store.writing() as session:
        row = _held(session, store, job, token)
        if row is None:
            return False
        if publish is not None:
            publish()
        if predictions is not None:
            classes, proba = predictions
            replace_all_predictions(session, job, np.arange(1, len(proba) + 1), *labels_and_confidences(classes, proba),
                                    proba)
        for field, value in {**values, "status": status, "finished_at": utcnow()}.items():
            setattr(row, field, value)
        return True


def give_back(store: Store, job: int, token: str) -> bool:
    """Queue ``job`` again (its run was cut short), if ``token`` still holds it; False when not."""
    with store.writing() as session:
        row = _held(session, store, job, token)
        if row is not None:
            row.status, row.heartbeat_at, row.claim = "queued", None, None
        return row is not None
