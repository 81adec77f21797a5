"""The pool's pre-labels as rows of the predictions table, and the rule for whose pre-labels stand.

A finished fine-tune's pre-labels stand while it scored above the newest probe
(:func:`serving_finetune`); the store applies it inside the transaction that writes a probe's chunk,
so a fine-tune finishing mid-way is never overwritten (:mod:`headstart.labeling.jobs`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from headstart.labeling.models import ModelVersion, Prediction


def labels_and_confidences(classes: Sequence[str], proba: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Each item's pre-label (the likeliest of ``classes``) and its probability, from ``proba`` (n, k)."""
    return [classes[i] for i in proba.argmax(axis=1)], proba.max(axis=1)


def replace_all_predictions(session: Session, version: int, item_ids: Sequence[int], labels: Sequence[str],
                            confidences: Sequence[float], probas) -> None:
    """Every stored pre-label replaced by ``version``'s, in ``session``'s transaction."""
    session.execute(Prediction.__table__.delete())
    for start in range(0, len(item_ids), 5000):  # rows built a chunk at a time: a pool may be a million
        end = start + 5000
        session.execute(Prediction.__table__.insert(), prediction_rows(
            version, item_ids[start:end], labels[start:end], confidences[start:end], probas[start:end]))


def serving_finetune(session: Session, above: float) -> ModelVersion | None:
    """The finished fine-tune whose pre-labels the pool holds, when it scored above ``above`` on its
    held-out labels; else None (see :func:`headstart.labeling.retrain.better_finetune` for why)."""
    stored = select(Prediction.model_version_id).distinct()
    tuned = session.scalars(select(ModelVersion).where(
        ModelVersion.kind == "finetune", ModelVersion.status == "done", ModelVersion.id.in_(stored))
        .order_by(ModelVersion.id.desc())).first()
    score = None if tuned is None else (tuned.metrics or {}).get("accuracy")
    return tuned if score is not None and score > above else None


def prediction_rows(version_id: int, item_ids, labels, confidences, probas) -> list[dict]:
    """Rows of the predictions table: one a predicted item, probabilities rounded to 6 places."""
    return [{"item_id": int(i), "model_version_id": version_id, "label": label, "confidence": float(c),
             "proba": [round(float(p), 6) for p in proba]}
            for i, label, c, proba in zip(item_ids, labels, confidences, probas)]
