"""The labeling store: SQLite (WAL) by default, PostgreSQL when given a URL; one transaction a label.

    store = Store.open("labels.db")                      # or "postgresql://user@host/db"
    store.add_label("item-17", "positive", annotator="ana")

A label is on disk when :meth:`Store.add_label` returns, and training that reads the pool never
holds up labeling (:mod:`~headstart.labeling.database`: WAL, full sync, ``BEGIN IMMEDIATE``). The
schema comes from the Alembic migrations, run on open.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

from sqlalchemy import create_engine, func, inspect, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from headstart.errors import LabelConflictError, LabelingError, NotAllowedError
from headstart.labeling.database import database_url, migrate, sqlite_engine
from headstart.labeling.prelabel_rows import prediction_rows, replace_all_predictions, serving_finetune
from headstart.labeling.models import (ROLES, SOURCES, Item, Label, ModelVersion, Prediction, Project, ReviewEntry,
                                      utcnow)

class ItemRow(NamedTuple):
    """An item as stored: ``id`` is the store's own key, ``external_id`` the pool's id (what people and
    the API use), ``content`` the text or the image's path, ``hash`` the content hash, ``required``
    how many annotators' labels the item takes."""

    id: int
    external_id: str
    content: str
    hash: str
    required: int


@dataclass(frozen=True)
class LabelRecord:
    """A label as stored: ``created_at`` is UTC."""

    id: int
    item: str
    label: str
    annotator: str
    source: str
    created_at: datetime
    model_version: int | None = None
    comment: str = ""
    item_key: int = 0  # the item's store id (its position + 1); 0 where not read

    def row(self) -> dict:
        return {"id": self.item, "label": self.label, "annotator": self.annotator, "source": self.source,
                "created_at": iso(self.created_at), "model_version": self.model_version, "comment": self.comment}


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which are UTC here."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


class Store:
    """A labeling project's database. Every method opens its own short transaction.

    Use :meth:`open` (which runs the migrations); ``url`` is a SQLAlchemy URL.
    """

    def __init__(self, url: str):
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        # What error messages name: the SQLite file, or the URL without its password.
        self.where = make_url(url).database if self.dialect == "sqlite" else \
            make_url(url).render_as_string(hide_password=True)
        if self.dialect == "sqlite":
            self.engine = sqlite_engine(url, immediate=False)
            self._write_engine = sqlite_engine(url, immediate=True)
        else:
            self.engine = self._write_engine = create_engine(url, pool_pre_ping=True)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        self._project: Project | None = None

    @classmethod
    def open(cls, where: str | Path, *, create: bool = False) -> "Store":
        """Open the store at a path (SQLite file) or URL and migrate it to the newest schema.

        Raises LabelingError when ``where`` is a path with no database and ``create`` is False.
        """
        url = database_url(where)
        if not create and make_url(url).get_backend_name() == "sqlite":
            path = make_url(url).database
            if not path or not Path(path).is_file():
                raise LabelingError("no labeling project here", where=str(where),
                                    fix="create one with `headstart label init POOL --labels a,b --db FILE`, "
                                        "or give the right --db")
        store = cls(url)
        try:
            # An SQLite file of some other program's is left as it is, not given our tables.
            if not create and store.engine.dialect.name == "sqlite" \
                    and "alembic_version" not in inspect(store.engine).get_table_names():
                store.close()
                raise LabelingError("not a headstart labeling database", where=str(where),
                                    fix="give the --db that `headstart label init` created")
            migrate(store._write_engine)
        except DatabaseError as error:  # OperationalError, or "file is not a database"
            store.close()
            # one line: a driver's message may span several (psycopg's "Is the server running...")
            raise LabelingError(f"cannot open the database ({' '.join(str(error.orig).split())})", where=str(where),
                                fix="check the path or URL, and that the server is running") from error
        return store

    def close(self) -> None:
        self.engine.dispose()
        self._write_engine.dispose()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A write transaction, committed on leaving the block (rolled back on an exception)."""
        with self._write.begin() as session:
            yield session

    # -- the project ---------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        if self._project is None:
            with self.reading() as session:
                self._project = session.scalars(select(Project)).first()
            if self._project is None:
                raise LabelingError("the database has no labeling project", where=self.where,
                                    fix="create one with `headstart label init`")
        return self._project

    @property
    def classes(self) -> list[str]:
        return list(self.project.classes)

    def update_settings(self, **settings) -> None:
        with self.writing() as session:
            project = session.scalars(select(Project)).one()
            project.settings = {**project.settings, **settings}
        self._project = None

    # -- items ---------------------------------------------------------------------------------

    def item_table(self) -> list[ItemRow]:
        """Every item, by id. Read through the driver's cursor: for 100,000 items SQLAlchemy's row
        objects cost more than the read."""
        with self.engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT id, external_id, content, content_hash, required_labels "
                                              "FROM items ORDER BY id").fetchall()
        return [ItemRow(*row) for row in rows]

    def count_items(self) -> int:
        with self.reading() as session:
            return session.scalar(select(func.count(Item.id)))

    def _item(self, session: Session, external_id: str) -> Item:
        item = session.scalars(select(Item).where(Item.external_id == str(external_id))).first()
        if item is None:
            raise LabelingError(f"unknown item id '{external_id}'", where=self.where,
                                fix="use an id from the pool (`headstart label next` lists them)")
        return item

    # -- labels --------------------------------------------------------------------------------

    def check_label(self, label: str, where: str) -> str:
        label = str(label).strip()
        if label not in self.classes:
            raise LabelingError(f"label '{label}' is not in the label set", where=where,
                                fix=f"use one of: {', '.join(self.classes)}")
        return label

    def add_label(self, item: str, label: str, *, annotator: str = "default", source: str = "person",
                  replace: bool = False, model_version: int | None = None, role: str | None = None,
                  comment: str = "") -> LabelRecord:
        """Store one label in its own transaction; when this returns, the label is committed.

        On an item that takes one label, a second label is a :class:`LabelConflictError` unless
        ``replace`` is set (the first is then kept as superseded) or the first came from the model
        (a person's label always supersedes an auto-accepted one). The same label by the same
        annotator again is a no-op returning the stored one. On an item that takes several
        annotators, each annotator has a slot of their own.

        ``role``: the signed-in role of ``annotator`` (the web page). An annotator may replace only
        their own label; replacing another person's is a :class:`NotAllowedError` unless the role is
        reviewer or admin. None (the CLI, scripts with the database in hand) may replace any label.

        ``comment``: free text kept with the label (why, or what was unclear); the same label again
        with another comment updates the comment.
        """
        try:
            with self.writing() as session:
                return self._add(session, item, label, annotator, source, replace, model_version, role, comment)
        except IntegrityError as error:  # another process wrote the same slot between our read and write
            raise LabelConflictError(f"item '{item}' was labeled by someone else at the same time; "
                                     f"'{label}' was not stored", where=self.where,
                                     fix="look at the item again and pass --replace to correct it") from error

    def add_labels(self, labels: Sequence[tuple[str, str, str]], *, source: str = "import",
                   replace: bool = False, model_version: int | None = None) -> list[LabelRecord]:
        """Store many (item, label, annotator) labels in one transaction: all of them or, on an error
        (unknown item, label outside the set, a conflict), none. ``model_version``: the model that
        gave them (auto-accepted labels)."""
        try:
            with self.writing() as session:
                return [self._add(session, item, label, annotator, source, replace, model_version, None)
                        for item, label, annotator in labels]
        except IntegrityError as error:
            raise LabelConflictError("an item was labeled by someone else during the import; nothing was stored",
                                     where=self.where, fix="run the import again") from error

    def _add(self, session: Session, item: str, label: str, annotator: str, source: str, replace: bool,
             model_version: int | None, role: str | None, comment: str = "") -> LabelRecord:
        if source not in SOURCES:
            raise LabelingError(f"unknown label source '{source}'", where="source", fix=f"use one of {SOURCES}")
        annotator = str(annotator).strip() or "default"
        label = self.check_label(label, f"item '{item}'")
        row = self._item(session, item)
        slot = "" if row.required_labels <= 1 else annotator
        existing = session.scalars(select(Label).where(
            Label.item_id == row.id, Label.slot == slot, Label.superseded_at.is_(None))).first()
        if existing is not None:
            if existing.label == label and existing.annotator == annotator:
                if comment.strip() and comment.strip() != (existing.comment or ""):
                    existing.comment = comment.strip()
                return _record(existing, row.external_id)
            if not (replace or (existing.source == "model" and source != "model")):
                raise LabelConflictError(
                    f"item '{item}' already has the label '{existing.label}' by '{existing.annotator}' "
                    f"({existing.source}, {iso(existing.created_at)}); '{label}' was not stored",
                    where=self.where, fix="pass replace=True (CLI: --replace) to correct it")
            if existing.source != "model" and existing.annotator != annotator and not _may_replace_others(role):
                raise NotAllowedError(
                    f"item '{item}' has the label '{existing.label}' by '{existing.annotator}'; an {role} may "
                    f"replace only their own labels, so '{label}' was not stored", where=f"item '{item}'",
                    fix="ask a reviewer to correct it (the review page), or label another item")
        new = Label(item_id=row.id, label=label, annotator=annotator, source=source, slot=slot,
                    created_at=utcnow(), model_version_id=model_version, comment=comment.strip() or None)
        if existing is not None:
            existing.superseded_at = new.created_at
            session.flush()
        session.add(new)
        session.flush()
        if existing is not None:
            existing.superseded_by = new.id
        return _record(new, row.external_id)

    def current_labels(self, sources: Sequence[str] = SOURCES) -> list[LabelRecord]:
        """Every current (not superseded) label, by item id then label id."""
        # Plain columns, not ORM objects: building thousands of ORM instances costs ~0.1 ms each.
        with self.reading() as session:
            rows = session.execute(
                select(Label.id, Item.external_id, Label.label, Label.annotator, Label.source, Label.created_at,
                       Label.model_version_id, Label.comment, Label.item_id).join(Item, Item.id == Label.item_id)
                .where(Label.superseded_at.is_(None), Label.source.in_(list(sources)))
                .order_by(Label.item_id, Label.id)).all()
        return [LabelRecord(*row[:-2], comment=row[-2] or "", item_key=row[-1]) for row in rows]

    def withdraw_last(self, annotator: str) -> LabelRecord | None:
        """Undo the annotator's newest label from a person that is still current: it stays in the
        history, superseded by nothing, and the label it had replaced (if any) is current again. A
        label someone else has replaced meanwhile is theirs to undo, not this annotator's. None when
        there is none."""
        with self.writing() as session:
            while True:
                label = session.scalars(select(Label).where(
                    Label.annotator == annotator, Label.source == "person", Label.superseded_at.is_(None))
                    .order_by(Label.id.desc())).first()
                if label is None:
                    return None
                # compare-and-set: on PostgreSQL a concurrent replace may supersede it after our read,
                # and then it is not ours to withdraw any more (SQLite's BEGIN IMMEDIATE rules that out)
                withdrawn = session.execute(
                    update(Label).where(Label.id == label.id, Label.superseded_at.is_(None))
                    .values(superseded_at=utcnow()).execution_options(synchronize_session=False))
                if withdrawn.rowcount == 1:
                    break
            session.execute(update(Label).where(Label.superseded_by == label.id)  # what it replaced is current again
                            .values(superseded_at=None, superseded_by=None)
                            .execution_options(synchronize_session=False))
            return _record(label, session.get(Item, label.item_id).external_id)

    def progress(self, annotator: str) -> dict:
        """Items, items with a current label, and the annotator's current labels (three counts)."""
        with self.reading() as session:
            current = Label.superseded_at.is_(None)
            return {"items": session.scalar(select(func.count(Item.id))),
                    "labeled_items": session.scalar(select(func.count(func.distinct(Label.item_id))).where(current)),
                    "mine": session.scalar(select(func.count(Label.id)).where(
                        current, Label.annotator == annotator, Label.source == "person"))}

    def labeled_by(self, external_ids: Sequence[str]) -> dict[str, tuple[int, list[tuple[str, str]]]]:
        """For some items: (labels the item takes, [(annotator, source)] of its current labels), by item id."""
        with self.reading() as session:
            rows = session.execute(select(Item.external_id, Item.required_labels, Label.annotator, Label.source)
                                   .outerjoin(Label, (Label.item_id == Item.id) & Label.superseded_at.is_(None))
                                   .where(Item.external_id.in_([str(i) for i in external_ids]))).all()
        found: dict[str, tuple[int, list[tuple[str, str]]]] = {}
        for external, required, annotator, source in rows:
            found.setdefault(external, (required, []))[1].extend([(annotator, source)] if annotator else [])
        return found

    def label_history(self) -> list[tuple[LabelRecord, str | None]]:
        """Every label ever stored, with when it was superseded (None while current)."""
        with self.reading() as session:
            rows = session.execute(select(Label, Item.external_id).join(Item, Item.id == Label.item_id)
                                   .order_by(Label.id)).all()
        return [(_record(label, external), iso(label.superseded_at)) for label, external in rows]

    def count_labels(self, sources: Sequence[str] = ("person", "import")) -> int:
        with self.reading() as session:
            return session.scalar(select(func.count(Label.id)).where(Label.source.in_(list(sources))))

    # -- model versions and predictions --------------------------------------------------------

    def add_model_version(self, kind: str, *, status: str = "queued", n_labels: int = 0, metrics: dict | None = None,
                          weights: bytes | None = None, path: str | None = None) -> int:
        with self.writing() as session:
            version = ModelVersion(kind=kind, status=status, n_labels=n_labels, metrics=metrics or {},
                                   weights=weights, path=path, created_at=utcnow(),
                                   finished_at=utcnow() if status in ("done", "failed") else None)
            session.add(version)
            session.flush()
            return version.id

    def update_model_version(self, version_id: int, **values) -> None:
        if values.get("status") in ("done", "failed"):
            values.setdefault("finished_at", utcnow())
        with self.writing() as session:
            session.execute(update(ModelVersion).where(ModelVersion.id == version_id).values(**values))

    def model_versions(self, kind: str | None = None) -> list[ModelVersion]:
        with self.reading() as session:
            query = select(ModelVersion).order_by(ModelVersion.id)
            return list(session.scalars(query if kind is None else query.where(ModelVersion.kind == kind)))

    def latest_model(self, kind: str | None = None) -> ModelVersion | None:
        with self.reading() as session:
            query = select(ModelVersion).where(ModelVersion.status == "done").order_by(ModelVersion.id.desc())
            if kind:
                query = query.where(ModelVersion.kind == kind)
            return session.scalars(query).first()

    def replace_predictions(self, version_id: int, item_ids: Sequence[int], labels: Sequence[str],
                            confidences: Sequence[float], probas) -> None:
        """Store the predictions of one model version, dropping older versions' (one transaction)."""
        with self.writing() as session:
            replace_all_predictions(session, version_id, item_ids, labels, confidences, probas)

    def write_predictions(self, version_id: int, item_ids: Sequence[int], labels: Sequence[str],
                          confidences: Sequence[float], probas, *, unless_finetune_above: float | None = None) -> bool:
        """Store one version's predictions of some items, dropping other versions' of the items from
        the lowest to the highest of ``item_ids`` (one transaction: a chunk of a resumable pre-labelling).

        With ``unless_finetune_above`` (a probe's accuracy), nothing is written while a finished
        fine-tune that scored higher holds the pre-labels (:func:`~headstart.labeling.prelabel_rows.serving_finetune`);
        returns whether the chunk was written.
        """
        with self.writing() as session:
            if unless_finetune_above is not None and serving_finetune(session, unless_finetune_above) is not None:
                return False
            session.execute(Prediction.__table__.delete().where(
                Prediction.item_id.between(int(min(item_ids)), int(max(item_ids))),
                Prediction.model_version_id != version_id))
            session.execute(Prediction.__table__.insert(),
                            prediction_rows(version_id, item_ids, labels, confidences, probas))
            return True

    def serving_finetune(self, above: float) -> ModelVersion | None:
        """The finished fine-tune whose pre-labels are stored, when it scored above ``above``; else None."""
        with self.reading() as session:
            return serving_finetune(session, above)

    def predicted_items(self, version_id: int) -> list[int]:
        """Ids of the items with a prediction of model version ``version_id``."""
        with self.reading() as session:
            return list(session.scalars(select(Prediction.item_id).where(Prediction.model_version_id == version_id)
                                        .order_by(Prediction.item_id)))

    def drop_predictions(self, except_version: int, *, unless_finetune_above: float | None = None) -> None:
        """Drop every prediction not of ``except_version`` (not while a better fine-tune's are stored, as
        :meth:`write_predictions`)."""
        with self.writing() as session:
            if unless_finetune_above is not None and serving_finetune(session, unless_finetune_above) is not None:
                return
            session.execute(Prediction.__table__.delete().where(Prediction.model_version_id != except_version))

    def item(self, external_id: str) -> dict:
        """One item with its current labels and stored prediction (for a page that shows one item)."""
        with self.reading() as session:
            row = self._item(session, external_id)
            labels = session.execute(
                select(Label.id, Label.label, Label.annotator, Label.source, Label.created_at, Label.model_version_id,
                       Label.comment).where(Label.item_id == row.id, Label.superseded_at.is_(None))
                .order_by(Label.id)).all()
            prediction = session.execute(select(Prediction.label, Prediction.confidence, Prediction.proba,
                                                Prediction.model_version_id)
                                         .where(Prediction.item_id == row.id)).first()
        return {"id": row.external_id, "content": row.content, "required_labels": row.required_labels,
                "labels": [LabelRecord(i, row.external_id, *rest[:-1], comment=rest[-1] or "").row()
                           for i, *rest in labels],
                "prediction": None if prediction is None else
                {"label": prediction[0], "confidence": prediction[1], "proba": prediction[2],
                 "model_version": prediction[3]}}

    def predictions_of(self, external_ids: Sequence[str]) -> dict[str, dict]:
        """The stored predictions of some items, by item id (items without one are left out)."""
        with self.reading() as session:
            rows = session.execute(select(Item.external_id, Prediction.label, Prediction.confidence, Prediction.proba,
                                          Prediction.model_version_id).join(Item, Item.id == Prediction.item_id)
                                   .where(Item.external_id.in_([str(i) for i in external_ids]))).all()
        return {external: {"label": label, "confidence": confidence, "proba": proba, "model_version": version}
                for external, label, confidence, proba, version in rows}

    def prediction_version(self) -> int | None:
        """The model version of the stored predictions (None when there are none)."""
        with self.reading() as session:
            return session.scalar(select(func.max(Prediction.model_version_id)))

    def predictions(self) -> list[tuple[str, str, float, list[float], int]]:
        """(item external id, label, confidence, probabilities, model version) of the stored predictions."""
        with self.reading() as session:
            rows = session.execute(select(Item.external_id, Prediction.label, Prediction.confidence,
                                          Prediction.proba, Prediction.model_version_id)
                                   .join(Item, Item.id == Prediction.item_id).order_by(Item.id)).all()
        return [tuple(row) for row in rows]

    # -- the review queue ----------------------------------------------------------------------

    def add_review(self, entries: Sequence[tuple[str, str, str, str | None]]) -> int:
        """Queue (item external id, reason, detail, suggested label) entries; an item already open for
        the same reason is updated, not duplicated. Returns how many were new."""
        new = 0
        with self.writing() as session:
            for external_id, reason, detail, suggested in entries:
                item = self._item(session, external_id)
                open_entry = session.scalars(select(ReviewEntry).where(
                    ReviewEntry.item_id == item.id, ReviewEntry.reason == reason,
                    ReviewEntry.status == "open")).first()
                if open_entry is not None:
                    open_entry.detail, open_entry.suggested_label = detail, suggested
                else:
                    session.add(ReviewEntry(item_id=item.id, reason=reason, detail=detail,
                                            suggested_label=suggested, created_at=utcnow()))
                    new += 1
        return new

    def review_queue(self, status: str = "open") -> list[dict]:
        with self.reading() as session:
            rows = session.execute(select(ReviewEntry, Item.external_id).join(Item, Item.id == ReviewEntry.item_id)
                                   .where(ReviewEntry.status == status).order_by(ReviewEntry.id)).all()
        return [{"review_id": entry.id, "id": external, "reason": entry.reason, "detail": entry.detail,
                 "suggested_label": entry.suggested_label, "created_at": iso(entry.created_at)}
                for entry, external in rows]

    def resolve_review(self, review_id: int) -> None:
        with self.writing() as session:
            entry = session.get(ReviewEntry, review_id)
            if entry is None:
                raise LabelingError(f"no review entry {review_id}", where=self.where,
                                    fix="see `headstart label issues --list`")
            entry.status, entry.resolved_at = "resolved", utcnow()


def _may_replace_others(role: str | None) -> bool:
    """Whether a person signed in with ``role`` may replace another person's label (None: not signed
    in through the web page, so the database is in their hands anyway)."""
    return role is None or ROLES.index(role) >= ROLES.index("reviewer")


def _record(label: Label, external_id: str) -> LabelRecord:
    return LabelRecord(id=label.id, item=external_id, label=label.label, annotator=label.annotator,
                       source=label.source, created_at=label.created_at, model_version=label.model_version_id,
                       comment=label.comment or "")
