"""The labeling store's tables (SQLAlchemy 2 declarative models).

One project per database. The schema is created and upgraded only by the Alembic migrations in
``migrations/``; a test checks that these models and the migrations agree.

- ``project``: one row: name, modality, label set, backbone and settings.
- ``items``: the pool: an external id (the pool's ``id`` column, or the row / file name), the text
  or image path, its content hash (the features cache key) and how many annotators it takes.
- ``labels``: every label ever given, with annotator, time and source (person, model, import).
  A label may carry a free-text comment (why, or what was unclear). A label is *current* until superseded; a partial unique index allows one current label per
  (item, slot), where the slot is ``""`` on a single-annotator item and the annotator's name on a
  multi-annotator item, so that a conflicting second write fails in the database itself.
- ``model_versions``: each retrained model (probe weights inline, fine-tunes as a folder), its
  status (queued, running, done, failed) and metrics; a running job's heartbeat (``heartbeat_at``)
  says when its worker was last known alive (:mod:`headstart.labeling.heartbeat`).
- ``predictions``: the latest model's predicted label and class probabilities of each item.
- ``review``: items for a person to look at again: annotator disagreements and label issues.
- ``users``: the people who sign in to the web page: a name, a role (admin, reviewer, annotator)
  and the sha256 of their token (the token itself is shown once and never stored); a disabled user
  (``disabled_at``) cannot sign in, and their labels stay.
- ``sessions``: signed-in browsers: the sha256 of the session id the cookie holds, its user, its CSRF
  token, and when it expires or was ended (logout), so that a session can be revoked on the server.
- ``leases``: items handed out and not yet labeled, per annotator, until when; in the database so
  that every server on it sees them and two servers never hand out the same item at once.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SOURCES = ("person", "model", "import")
JOB_STATES = ("queued", "running", "done", "failed")
ROLES = ("annotator", "reviewer", "admin")  # each role may do what the ones before it may
CURRENT = text("superseded_at IS NULL")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Project(Base):
    __tablename__ = "project"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    modality: Mapped[str] = mapped_column(String(10))
    classes: Mapped[list[Any]] = mapped_column(JSON)
    backbone: Mapped[str] = mapped_column(String(500))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(500), unique=True)
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    origin: Mapped[str] = mapped_column(Text, default="")
    required_labels: Mapped[int] = mapped_column(Integer, default=1)


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (
        Index("ix_labels_current_slot", "item_id", "slot", unique=True, sqlite_where=CURRENT,
              postgresql_where=CURRENT),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    label: Mapped[str] = mapped_column(String(500))
    annotator: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(10))
    slot: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    model_version_id: Mapped[Optional[int]] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    superseded_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    superseded_by: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    comment: Mapped[Optional[str]] = mapped_column(Text, nullable=True)


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    n_labels: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    weights: Mapped[Optional[bytes]] = mapped_column(LargeBinary, nullable=True)
    path: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    claim: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)  # the running worker's (labeling.jobs)


class Prediction(Base):
    __tablename__ = "predictions"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    label: Mapped[str] = mapped_column(String(500))
    confidence: Mapped[float] = mapped_column(Float)
    proba: Mapped[list[Any]] = mapped_column(JSON)


class ReviewEntry(Base):
    __tablename__ = "review"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
    suggested_label: Mapped[Optional[str]] = mapped_column(String(500), nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)


class Lease(Base):
    __tablename__ = "leases"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    annotator: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
