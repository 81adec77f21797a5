"""A labeling project: a pool of items and a label set in a store, with features and the next batch.

    from headstart.labeling import init_project, open_project
    project = init_project("pool.csv", labels=["neg", "pos"], db="labels.db")
    for item in project.next(10):
        project.add(item["id"], "pos", annotator="ana")

Item ids come from the pool's ``id`` column (field); without one, a table's ids are the row
numbers as a spreadsheet shows them (the header is row 1; JSONL: line numbers) and an image
folder's are the files' paths inside the folder. A ``label`` column in the pool is imported
(source ``import``) where it is filled in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from headstart.labeling import jobs, users as accounts
from headstart.labeling.item_features import FEATURES_KEY, item_features
from headstart.labeling.item_reads import items_at, multi_items
from headstart.labeling.locks import retrain_lock
from headstart.labeling.models import SOURCES, ModelVersion
from headstart.labeling.pool_features import SETTING as POOL_SETTING
from headstart.labeling.pool_features import open_pool_matrix
from headstart.labeling.prelabel_rows import labels_and_confidences
from headstart.labeling.store import ItemRow, LabelRecord, Store

DEFAULT_DB = "labels.db"


def open_project(db: str | Path = DEFAULT_DB, **options) -> LabelingProject:
    """Open an existing project (a SQLite path or a PostgreSQL URL)."""
    return LabelingProject(Store.open(db), **options)


class LabelingProject:
    """A labeling project: its items with their features, and everything its store keeps (labels,
    model versions and jobs, predictions, the review queue, users), reached through these methods.
    Heavier steps live in their own modules (prelabel, retrain, issues, agreement, exchange, web) and
    take a project; only this class talks to the :class:`Store`.

    Args:
        store: the opened store.
        features: the items' features (n_items, d) in item order, to skip the backbone (tests,
            benchmarks); by default they are computed once and read from the features cache.
        cache_dir, engine: the features cache and where frozen forward passes run.
    """

    def __init__(self, store: Store, *, features: np.ndarray | None = None, cache_dir: str | Path | None = None,
                 engine: str = "auto"):
        self.store = store
        self._features = features
        self._table: list[ItemRow] | None = None
        self._position = None
        self._size: int | None = None
        self._required: np.ndarray | None = None
        self._memo: dict = {}  # per pool: squared norms
        self._proba_memo: dict = {}  # per probe: probabilities of every item
        self.cache_dir = cache_dir
        self.engine = engine

    # -- the project's settings ----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.store.project.name

    @property
    def classes(self) -> list[str]:
        return self.store.classes

    @property
    def modality(self) -> str:
        return self.store.project.modality

    @property
    def backbone(self) -> str:
        """The registry name of the backbone that gives the items' features."""
        return self.store.project.backbone

    @property
    def source(self) -> str:
        """The pool's file or folder, as given at init."""
        return self.store.project.source

    @property
    def where(self) -> str:
        """What error messages name for the store: the SQLite file, or the URL without its password."""
        return self.store.where

    @property
    def url(self) -> str:
        """The store's URL, password included: for a process that opens the same store, never for messages."""
        return self.store.url

    @property
    def settings(self) -> dict:
        return dict(self.store.project.settings)

    def update_settings(self, **settings) -> None:
        """Change settings (e.g. ``retrain_every``); the others keep their values."""
        self.store.update_settings(**settings)

    @property
    def backbone_options(self) -> dict:
        """``create_backbone`` options chosen at init (image_size, max_length, mirror); none is a default."""
        return dict(self.settings.get("backbone_options", {}))

    # -- items ---------------------------------------------------------------------------------

    def table(self) -> list[ItemRow]:
        """Every item in the store's order (the order of :meth:`features`); items never change after init."""
        if self._table is None:
            self._table = self.store.item_table()
        return self._table

    @property
    def ids(self) -> list[str]:
        return [row.external_id for row in self.table()]

    def position(self) -> dict[str, int]:
        if self._position is None:
            self._position = {row.external_id: i for i, row in enumerate(self.table())}
        return self._position

    def item(self, item: str) -> dict:
        """One item with its current labels and stored prediction; LabelingError for an unknown id."""
        return self.store.item(item)

    @property
    def size(self) -> int:
        """How many items the pool has (items never change after init)."""
        if self._size is None:
            self._size = len(self._table) if self._table is not None else self.store.count_items()
        return self._size

    def required(self) -> np.ndarray:
        """How many labels each item takes (n,), in item order; read without the items' texts."""
        if self._required is None:
            self._required = np.ones(self.size, dtype=np.int64)
            if self.settings.get("multi_items", None) != 0:  # 0: init found none
                ids, counts = multi_items(self.store)
                self._required[ids - 1] = counts
        return self._required

    def rows_at(self, positions) -> list[ItemRow]:
        """The items at ``positions`` (item order), read by id without the whole table."""
        if self._table is not None:
            return [self._table[int(i)] for i in positions]
        return items_at(self.store, [int(i) + 1 for i in positions])

    def features(self) -> np.ndarray:
        """Features of every item (n, d) from the project's backbone, memory-mapped from one matrix
        file written once from the features cache (:mod:`.pool_features`; the backbone is loaded
        only for items the cache lacks)."""
        if self._features is None:
            key = self.settings.get(FEATURES_KEY)
            self._features, kept = open_pool_matrix(self.store, self.settings, backbone=self.backbone,
                                                    options=self.backbone_options, key=key, engine=self.engine,
                                                    cache_dir=self.cache_dir)
            if kept is not None:
                self.update_settings(**{POOL_SETTING: kept, FEATURES_KEY: kept["key"]})
        return self._features

    def features_at(self, positions: np.ndarray) -> np.ndarray:
        """Features of the items at ``positions`` (m, d), computing only those the cache lacks."""
        if self._features is not None:
            return np.asarray(self._features[np.asarray(positions)])
        return self._cached_features(self.rows_at(positions))

    def squared_norms(self) -> np.ndarray:
        """Each item's squared feature norm (n,), computed once (:mod:`.pool_scores`)."""
        from headstart.labeling.pool_scores import squared_norms

        return squared_norms(self.features(), self._memo)

    def _cached_features(self, rows: list[ItemRow]) -> np.ndarray:
        key = self.settings.get(FEATURES_KEY)
        features, fingerprint = item_features([row.content for row in rows], [row.hash for row in rows],
                                              backbone=self.backbone, options=self.backbone_options, key=key,
                                              engine=self.engine, cache_dir=self.cache_dir)
        if fingerprint != key:
            self.update_settings(**{FEATURES_KEY: fingerprint})
        return features

    # -- labels --------------------------------------------------------------------------------

    def add(self, item: str, label: str, *, annotator: str = "default", replace: bool = False,
            source: str = "person", role: str | None = None, comment: str = "") -> LabelRecord:
        """Store one label (committed when this returns), with an optional free-text ``comment``;
        see :meth:`Store.add_label`."""
        return self.store.add_label(item, label, annotator=annotator, source=source, replace=replace, role=role,
                                    comment=comment)

    def add_labels(self, labels: Sequence[tuple[str, str, str]], *, source: str = "import", replace: bool = False,
                   model_version: int | None = None) -> list[LabelRecord]:
        """Store (item, label, annotator) labels in one transaction, all or none; see :meth:`Store.add_labels`."""
        return self.store.add_labels(labels, source=source, replace=replace, model_version=model_version)

    def check_label(self, label: str, where: str) -> str:
        """``label`` stripped; LabelingError naming ``where`` when it is not in the label set."""
        return self.store.check_label(label, where)

    def current_labels(self, sources: Sequence[str] = SOURCES) -> list[LabelRecord]:
        """Every current (not superseded) label of the given sources, by item then label."""
        return self.store.current_labels(sources)

    def label_history(self) -> list[tuple[LabelRecord, str | None]]:
        """Every label ever stored, with when it was superseded (None while current)."""
        return self.store.label_history()

    def count_labels(self, sources: Sequence[str] = ("person", "import")) -> int:
        return self.store.count_labels(sources)

    def withdraw_last(self, annotator: str) -> LabelRecord | None:
        """Undo the annotator's newest label (kept in the history); None when there is none."""
        return self.store.withdraw_last(annotator)

    def progress(self, annotator: str) -> dict:
        """Items, items with a current label, and the annotator's current labels."""
        return self.store.progress(annotator)

    def labeled_by(self, items: Sequence[str]) -> dict[str, tuple[int, list[tuple[str, str]]]]:
        """For some items: (labels the item takes, [(annotator, source)] of its current labels)."""
        return self.store.labeled_by(items)

    def resolved(self, *, include_model: bool = False, records: list[LabelRecord] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(positions, class ids) of items with a settled label: the current label of a single-annotator
        item, the majority of a multi-annotator item's labels (ties are left out for review).
        Auto-accepted model labels count only with ``include_model``. ``records``: the current
        labels, when the caller has them already."""
        sources = ("person", "import", "model") if include_model else ("person", "import")
        records = self.current_labels(sources) if records is None else [r for r in records if r.source in sources]
        votes: dict[str, list[str]] = {}
        for record in records:
            votes.setdefault(record.item, []).append(record.label)
        class_id = {name: i for i, name in enumerate(self.classes)}
        keys = {record.item: record.item_key for record in records}
        positions, labels = [], []
        for item, given in votes.items():
            # Plain Python here: most items have one label, and a numpy call per item cost ~25 us
            # each, which the web server felt on every re-ranking.
            ranked = Counter(given).most_common(2)
            if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
                positions.append(keys[item] - 1)  # position = store id - 1
                labels.append(class_id[ranked[0][0]])
        order = np.argsort(positions)
        return np.asarray(positions, dtype=np.int64)[order], np.asarray(labels, dtype=np.int64)[order]

    def done_for(self, annotator: str | None, records: list[LabelRecord] | None = None) -> np.ndarray:
        """Boolean mask of items that need no label from ``annotator``: those with all the labels they
        take, those this annotator has labeled already, and single-annotator items the model labeled."""
        required = self.required()
        have = np.zeros(self.size, dtype=int)
        done = np.zeros(self.size, dtype=bool)
        for record in self.current_labels() if records is None else records:
            i = record.item_key - 1
            if record.source == "model":
                done[i] |= required[i] <= 1
                continue
            have[i] += 1
            done[i] |= annotator is not None and record.annotator == annotator
        return done | (have >= required)

    # -- model versions, jobs and predictions --------------------------------------------------

    def model_versions(self, kind: str | None = None) -> list[ModelVersion]:
        """Every model version (probes, fine-tunes, queued jobs), or those of ``kind``, oldest first.

        A kind reads less: each probe version holds its weights.
        """
        return self.store.model_versions(kind)

    def latest_model(self, kind: str | None = None) -> ModelVersion | None:
        """The newest finished model version (of ``kind``: "probe", "finetune"), None before any."""
        return self.store.latest_model(kind)

    def add_model_version(self, kind: str, *, status: str = "queued", n_labels: int = 0, metrics: dict | None = None,
                          weights: bytes | None = None, path: str | None = None) -> int:
        """Record a model version (a finished probe, or a queued job); returns its id."""
        return self.store.add_model_version(kind, status=status, n_labels=n_labels, metrics=metrics,
                                            weights=weights, path=path)

    def update_model_version(self, version: int, **values) -> None:
        """Change a model version's fields (status, path, metrics, error, n_labels)."""
        self.store.update_model_version(version, **values)

    def claim_job(self, kind: str | None = None) -> ModelVersion | None:
        """The oldest queued job, marked running under a new claim (one worker gets it); None when none
        is queued. Its result counts only while the claim holds (:mod:`headstart.labeling.jobs`)."""
        return jobs.claim(self.store, kind)

    def finish_job(self, job: ModelVersion, status: str, **values) -> bool:
        """Record ``job``'s end (``status`` done or failed, ``values``; see :func:`headstart.labeling.jobs.finish`),
        if its claim still holds it; False when another run holds it or it went back in the queue."""
        return jobs.finish(self.store, job.id, job.claim, status, **values)

    def give_back_job(self, job: ModelVersion) -> bool:
        """Queue ``job`` again (its run was cut short) if its claim still holds it."""
        return jobs.give_back(self.store, job.id, job.claim)

    def store_predictions(self, version: int, proba: np.ndarray, classes: Sequence[str] | None = None) -> None:
        """Keep model ``version``'s pre-labels of every item, replacing older ones: the probabilities
        ``proba`` (n_items, n_classes) in item order, over ``classes`` (default: the project's)."""
        classes = list(self.classes if classes is None else classes)
        self.store.replace_predictions(version, np.arange(1, self.size + 1), *labels_and_confidences(classes, proba),
                                       proba)

    def store_prediction_chunk(self, version: int, positions: np.ndarray, proba: np.ndarray, *,
                               unless_finetune_above: float | None = None) -> bool:
        """Keep model ``version``'s pre-labels of the items at ``positions`` (one transaction), replacing
        other versions' of those items: a chunk of :func:`~headstart.labeling.retrain.predict_pool`.
        Returns False, writing nothing, while a finished fine-tune that scored above
        ``unless_finetune_above`` holds the pre-labels (:func:`headstart.labeling.prelabel_rows.serving_finetune`)."""
        return self.store.write_predictions(version, np.asarray(positions) + 1,
                                            *labels_and_confidences(self.classes, proba), proba,
                                            unless_finetune_above=unless_finetune_above)

    def predicted(self, version: int) -> np.ndarray:
        """Positions of the items that have a pre-label of model ``version``."""
        return np.asarray(self.store.predicted_items(version), dtype=np.int64) - 1

    def drop_predictions(self, except_version: int, *, unless_finetune_above: float | None = None) -> None:
        """Drop every pre-label not of ``except_version`` (not while a better fine-tune's are stored)."""
        self.store.drop_predictions(except_version, unless_finetune_above=unless_finetune_above)

    def predictions(self) -> list[tuple[str, str, float, list[float], int]]:
        """(item, label, confidence, probabilities, model version) of every stored prediction."""
        return self.store.predictions()

    def predictions_of(self, items: Sequence[str]) -> dict[str, dict]:
        """The stored predictions of some items, by item id (items without one are left out)."""
        return self.store.predictions_of(items)

    def prediction_version(self) -> int | None:
        """The model version of the stored predictions (None when there are none)."""
        return self.store.prediction_version()

    def retrain_lock(self, *, blocking: bool = True) -> AbstractContextManager[bool]:
        """The store's retrain lock (see :func:`headstart.labeling.locks.retrain_lock`)."""
        return retrain_lock(self.url, blocking=blocking)

    def probe(self):
        """The newest probe (a :class:`~headstart.learn.head.LinearHead`) and its version; (None, None) before any."""
        version = self.latest_model("probe")
        if version is None:
            return None, None
        from headstart.learn.head import LinearHead  # scikit-learn: loaded when there is a probe

        return LinearHead.from_bytes(version.weights), version.id

    def pool_proba(self, head) -> np.ndarray:
        """``head``'s class probabilities of every item (n, k), computed once per probe and kept
        (:mod:`.pool_scores`): a million items' are read, not computed, at each ``next``."""
        from headstart.labeling.pool_scores import pool_proba

        return pool_proba(self.features(), head, self._proba_memo)

    def current_proba(self) -> tuple[np.ndarray | None, int | None]:
        """Class probabilities of every item from the newest probe (None before any), and its version."""
        head, version = self.probe()
        return (None, None) if head is None else (self.pool_proba(head), version)

    # -- the review queue ----------------------------------------------------------------------

    def add_review(self, entries: Sequence[tuple[str, str, str, str | None]]) -> int:
        """Queue (item, reason, detail, suggested label) entries; returns how many were new."""
        return self.store.add_review(entries)

    def review_queue(self, status: str = "open") -> list[dict]:
        """The review entries of ``status`` ("open", "resolved"), oldest first."""
        return self.store.review_queue(status)

    def resolve_review(self, review_id: int) -> None:
        self.store.resolve_review(review_id)

    # -- users of the web page -----------------------------------------------------------------

    def add_user(self, name: str, role: str) -> str:
        """Add a user; returns their token (shown this once). See :mod:`headstart.labeling.users`."""
        return accounts.add_user(self.store, name, role)

    def new_token(self, name: str) -> str:
        """Give a user a new token (the old one stops working); returns it."""
        return accounts.new_token(self.store, name)

    def authenticate(self, token: str | None) -> accounts.Person | None:
        """The user whose token this is, or None."""
        return accounts.authenticate(self.store, token)

    def users(self) -> list[accounts.Person]:
        return accounts.list_users(self.store)

    # -- batches and figures -------------------------------------------------------------------

    def next(self, n: int = 10, *, strategy: str = "default", annotator: str | None = None,
             seed: int = 0) -> list[dict]:
        """The next ``n`` items for ``annotator``: first multi-annotator items that others have begun,
        then the strategy's picks (see :mod:`.batches`). Each is ``{"id", "content", "prediction",
        "confidence", "reason"}``."""
        from headstart.labeling.batches import next_batch

        return next_batch(self, n, strategy=strategy, annotator=annotator, seed=seed)

    def status(self) -> dict:
        """Counts of items, labels by source, annotators, model versions and open reviews."""
        records = self.current_labels()
        by_source: dict[str, int] = {}
        annotators: dict[str, int] = {}
        for record in records:
            by_source[record.source] = by_source.get(record.source, 0) + 1
            if record.source == "person":
                annotators[record.annotator] = annotators.get(record.annotator, 0) + 1
        positions, _ = self.resolved(include_model=True)
        versions = self.model_versions()
        latest = next((v for v in reversed(versions) if v.status == "done"), None)
        return {"items": self.size, "labeled_items": len(positions), "labels": by_source,
                "annotators": annotators, "classes": self.classes,
                "model_versions": [{"id": v.id, "kind": v.kind, "status": v.status, "n_labels": v.n_labels,
                                    "accuracy": v.metrics.get("accuracy")} for v in versions],
                "latest_model": None if latest is None else latest.id,
                "open_reviews": len(self.review_queue())}
