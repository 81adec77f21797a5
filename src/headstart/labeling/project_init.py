"""Creating a labeling project: a pool read (or streamed) into a new store, with its label set.

    from headstart.labeling import init_project
    project = init_project("pool.csv", labels=["neg", "pos"], db="labels.db")
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from headstart.errors import LabelingError
from headstart.labeling.judging import SETTING as JUDGING_SETTING
from headstart.labeling.judging import check_share
from headstart.labeling.models import Project
from headstart.labeling.project import DEFAULT_DB, LabelingProject
from headstart.labeling.store import Store


def init_project(pool: str | Path, *, labels: str | Sequence[str] | None = None, db: str | Path = DEFAULT_DB,
                 backbone: str | None = None, name: str | None = None, multi_share: float = 0.0,
                 annotators_per_item: int = 2, retrain_every: int = 50, finetune_every: int | None = None,
                 seed: int = 0, columns: dict | None = None, image_size: int | None = None, max_length: int | None = None,
                 mirror: bool = True, zero_shot: bool = False,
                 describe: str | dict | None = None, judging_share: float = 0.0) -> "LabelingProject":
    """Create a labeling project in ``db`` (a SQLite path or a PostgreSQL URL) from a pool.

    Args:
        pool: CSV/TSV/JSONL file or image folder; labels optional.
        labels: the label set (default: the labels found in the pool).
        db: where the store lives.
        backbone: registry name for features (default: minilm-l6 / effnet-lite0).
        multi_share: share of items (0..1) that go to ``annotators_per_item`` annotators, for agreement.
        retrain_every: the most new labels between two probe retrains (early ones come sooner:
            :func:`headstart.labeling.retrain.retrain_due`).
        finetune_every: a probe retrain queues a fine-tune of the backbone each time this many more
            labels arrived, from this many on (None: :data:`headstart.labeling.retrain.FINETUNE_EVERY`;
            0: only by hand). A worker (``headstart label retrain --worker`` or ``--watch``) runs it.
        columns: ``id_column``, ``text_column``, ``path_column``, ``label_column``.
        image_size, max_length, mirror: the backbone's options, as in :func:`headstart.fit`; the
            project's features and fine-tunes use them.
        zero_shot: text only: until labels arrive, a zero-shot model from the label names (or
            ``describe``: "name=description,...") pre-labels the pool and picks the first batch
            (:mod:`.zero_shot_start`).
        judging_share: share of the labels (0..0.5) drawn at random to judge the models on (:mod:`.judging`).

    The project and its items are one transaction. A CSV/TSV/JSONL of texts is streamed into it a
    batch at a time (:mod:`.pool_stream`, :mod:`.pool_load`), so a bad row is found while the pool is
    written: the transaction is rolled back and a SQLite file this call created is removed.
    """
    from headstart.backbones import DEFAULT_BACKBONE, backbone_modality, backbone_options  # torch: init only
    from headstart.labeling.pool import parse_label_set, read_pool
    from headstart.labeling.pool_load import write_project
    from headstart.labeling.pool_stream import PoolBatch, count_lines, stream_pool, streamable

    columns = columns or {}
    if streamable(pool, columns.get("text_column", "text")):  # a table of texts: read a batch at a time
        modality, source, batches = "text", str(Path(pool).absolute()), stream_pool(pool, **columns)
        rows = max(count_lines(pool) - (Path(pool).suffix.lower() != ".jsonl"), 1)
        classes = None if labels is None else parse_label_set(labels, ())
    else:
        data = read_pool(pool, **columns)
        modality, source = data.modality, data.source
        batches = [PoolBatch(data.ids, data.items, data.hashes, data.origins, data.labels)]
        classes = parse_label_set(labels, data.labels)
        rows = len(data.ids)
    backbone = backbone or DEFAULT_BACKBONE[modality]
    checked_settings = {**_zero_shot_settings(zero_shot, describe, modality, classes),
                        **({JUDGING_SETTING: check_share(judging_share)} if judging_share else {})}
    if backbone_modality(backbone) != modality:
        raise LabelingError(f"backbone '{backbone}' is for {backbone_modality(backbone)}, the pool is "
                            f"{modality}", where="--backbone",
                            fix=f"use a {modality} backbone, e.g. {DEFAULT_BACKBONE[modality]}")
    if not 0.0 <= multi_share <= 1.0 or annotators_per_item < 2:
        raise LabelingError("the share must be in 0..1 and annotators per item at least 2",
                            where="--multi-share/--annotators-per-item", fix="e.g. --multi-share 0.1")
    fresh_file = "://" not in str(db) and not Path(db).exists()
    store = Store.open(db, create=True)
    with store.reading() as session:
        if session.query(Project).count():
            store.close()
            raise LabelingError("a labeling project already exists in this database", where=str(db),
                                fix="give another --db, or delete the file to start over")
    try:
        write_project(store, pool, batches, classes=classes, labels=labels, modality=modality, source=source,
                       backbone=backbone, name=name, multi_share=multi_share,
                       annotators_per_item=annotators_per_item, seed=seed, columns=columns, rows=rows,
                       settings={"retrain_every": retrain_every, "multi_share": multi_share,
                                 **({} if finetune_every is None else {"finetune_every": finetune_every}),
                                 "annotators_per_item": annotators_per_item,
                                 "backbone_options": backbone_options(image_size, max_length, mirror),
                                 **checked_settings})
    except BaseException:
        store.close()
        if fresh_file:  # nothing half-written: a file this init created goes again
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        raise
    return LabelingProject(store)


def _zero_shot_settings(zero_shot: bool, describe, modality: str, classes) -> dict:
    """The project settings of a zero-shot start, checked before anything is written."""
    if not zero_shot:
        if describe is not None:
            raise LabelingError("--describe belongs to --zero-shot", where="--describe", fix="add --zero-shot")
        return {}
    if modality != "text":
        raise LabelingError("a zero-shot start needs a text encoder; the pool holds images", where="--zero-shot",
                            fix="leave --zero-shot out for images")
    if classes is None:
        raise LabelingError("a zero-shot start needs the label set", where="--labels", fix='e.g. --labels "neg,pos"')
    from headstart.labeling.zero_shot_prior import DESCRIBE_SETTING, SETTING
    from headstart.learn.zero_shot import parse_descriptions

    return {SETTING: True, DESCRIBE_SETTING: parse_descriptions(describe, classes)}
