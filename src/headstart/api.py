"""The public Python API: fit a model, load it, predict with it.

Example:
    import headstart
    model = headstart.fit("reviews.csv")              # text or images, probe or staged fine-tuning
    model.metrics["accuracy"], model.predict(["great product"])
    model = headstart.load("runs/reviews")
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from headstart.adapt import adapt_model, read_target
from headstart.backbones import backbone_name_for, backbone_options, create_backbone
from headstart.compute.device import on_device, resolve_device
from headstart.compute.launch import is_main_process
from headstart.data import Dataset, read_dataset
from headstart.data.input_table import read_input_table
from headstart.data.prepare import prepare
from headstart.data.unlabeled import read_unlabeled
from headstart.errors import DataError, ModelError
from headstart.evaluate import classification_metrics
from headstart.exported import ExportedModel, check_quantization, is_exported
from headstart.learn.config import FinetuneConfig, check_mode
from headstart.learn.finetune import seed_everything
from headstart.learn.temperature import calibrate
from headstart.learn.trainer import train
from headstart.model import Model
from headstart.progress import say
from headstart.saving import save
from headstart.transfer.baseline import scratch_comparison
from headstart.transfer.scratch_model import ScratchModel, is_scratch
from headstart.transfer.shift import measure_shift
from headstart.transfer.zero_shot import zero_shot_model


def load(folder: str | Path, *, device: str = "auto") -> Model | ScratchModel | ExportedModel:
    """Load a model folder written by :func:`fit` or :func:`export` (predicting through ONNX).

    A folder of :func:`fit` holds a transfer model (:class:`Model`, which predicts on ``device``:
    ``auto``, ``cpu``, ``cuda`` or ``cuda:N``) or one trained from scratch (:class:`ScratchModel`,
    shipped by ``mode="auto"`` when it beat transfer); those and exported ones run on the CPU.
    """
    resolve_device(device)  # a GPU that is not there is refused before the model's seconds of loading
    if is_exported(folder):
        return ExportedModel(folder)
    return ScratchModel.load(folder) if is_scratch(folder) else Model.load(folder, device=device)


def export(model: Model | ScratchModel | str | Path, out: str | Path, *, quantize: str | None = None) -> Path:
    """Write a model (or model folder) as an exported folder; see :meth:`Model.export`.

    Raises:
        ModelError: ``model`` is not a model folder (an exported one cannot be exported again).
    """
    check_quantization(quantize)  # before the model's seconds of loading
    if not isinstance(model, (Model, ScratchModel)):
        if is_exported(model):
            raise ModelError("this folder is an export already", where=str(model),
                             fix="give the model folder that `headstart fit` wrote")
        model = load(model)
    return model.export(out, quantize=quantize)


def _adapted_and_tested(model: Model, result, sets, target_set, classes, *, adapt: str, seed: int, engine: str,
                        cache_dir, started: float) -> tuple[np.ndarray, dict]:
    """(test probabilities, metrics) of ``model``, adapted first to ``target_set`` where one is given.

    ``sets``: (train, validation, test); the adaptation is :mod:`.adapt`'s, chosen with ``adapt``.
    """
    train_set, val_set, test_set = sets
    adaptation = None if target_set is None else adapt_model(model, train_set, val_set, target_set, method=adapt,
                                                             c=result.config["probe"]["C"], seed=seed, engine=engine,
                                                             finetune=result.config.get("finetune"), cache_dir=cache_dir)
    proba = model.predict_proba(test_set, engine=engine, cache_dir=cache_dir)
    metrics = {**classification_metrics(test_set.label_ids(classes), proba, classes),
               "seconds": time.perf_counter() - started, **({"adaptation": adaptation} if adaptation else {})}
    return proba, metrics


@on_device
def fit(data, *, test=None, val=None, backbone: str | None = None, mode: str = "auto", out: str | Path | None = None,
        seed: int = 0, ratios: Sequence[float] | None = None, image_size: int | None = None,
        max_length: int | None = None, finetune_config: FinetuneConfig | None = None, engine: str = "auto",
        cache_dir: str | Path | None = None, columns: dict | None = None, baseline: bool = True,
        auto_unfreeze: bool = False, mirror: bool = True, target=None, adapt: str = "auto",
        device: str = "auto", unlabeled=None, unlabeled_method: str = "auto",
        zero_shot_prior: bool = True, describe=None) -> Model | ScratchModel:
    """Train a classifier by transfer learning and evaluate it on the test split.

    Reads, splits, trains (:func:`headstart.learn.trainer.train`), tests (against scratch), saves.

    Args:
        data: a CSV/TSV/JSONL file or image folder (or a Dataset) with labels; a ``split`` column,
            where present, decides train/val/test.
        test: a separate labeled file (or Dataset) for testing.
        val: a separate labeled file (or Dataset) for validation.
        backbone: a registry name (default: ``minilm-l6`` for text, ``effnet-lite0`` for images).
        mode: ``probe`` (logistic regression on frozen features), ``finetune`` (the head starts
            from the probe, then the backbone is tuned) or ``auto``: fine-tune, but keep the probe
            when it scored better on the validation split by more than a standard error.
        out: the model folder to write (with ``report.html``); nothing is written when None.
        seed: seeds the split, the probe and fine-tuning.
        ratios: train/val/test fractions when the data has no split column (None: 70/20/10; with
            ``test``, a validation share of 2/9 capped at about 250 items, at least 5%).
        image_size: the side of images fed to an image backbone (default: the backbone's).
        max_length: tokens per text for a text backbone (default: the backbone's).
        finetune_config: settings of the fine-tune (see :class:`FinetuneConfig`).
        engine: ``auto``/``onnx``/``torch``: where frozen forward passes run.
        cache_dir: the features cache (default ``$HEADSTART_CACHE`` or ``~/.cache/headstart``).
        columns: column names: ``text_column``, ``label_column``, ``split_column``, ``path_column``.
        baseline: also train models from scratch and compare (``model.metrics["baseline"]``: accuracy,
            difference with a bootstrap interval, verdict); with ``mode="auto"`` the model from scratch is
            returned (and saved) when it beat transfer on validation beyond noise (:mod:`.transfer.baseline`).
        auto_unfreeze: fine-tune as many top layer groups as the layer-wise probes recommend
            (:mod:`headstart.transfer.layers`) instead of ``FinetuneConfig.unfreeze``.
        mirror: whether an image's left-right mirror shows the same class (default). False (digits, text, anything
            with a left and a right side): no flipped training images, no averaging with mirror images.
        target: unlabeled data the model will meet (a file, folder or Dataset): the model is adapted
            to it (:mod:`headstart.adapt`; ``model.metrics["adaptation"]`` says how and why), and the
            shift page (``shift.html``), measured on the pretrained features, goes beside the report.
        adapt: ``auto`` (chosen without target labels, or none), ``none``, ``coral``, ``adabn``,
            ``prior`` or ``self-train``.
        device: ``auto`` (a GPU where torch sees one), ``cpu``, ``cuda`` or ``cuda:N`` (:mod:`.compute`);
            under ``accelerate launch`` fine-tuning is data-parallel, and the main process alone saves.
        unlabeled: unlabeled items of the task (file, folder or Dataset) the head also learns from where that pays.
        unlabeled_method: ``auto``, ``none``, ``self-train`` or ``propagation`` (:mod:`.learn.pool_training`).
        zero_shot_prior: text with few labels: blend the probe with the names' zero-shot head (:mod:`.learn.prior`).
        describe: short class descriptions for that prior (``"a=...,b=..."`` or a mapping; default: the names).

    Returns:
        The trained :class:`~headstart.model.Model` (or :class:`ScratchModel`: ``baseline``), metrics in ``.metrics``.
    """
    started = time.perf_counter()
    check_mode(mode)  # before anything is read
    dataset = prepare(data, test=test, val=val, ratios=ratios, seed=seed, **(columns or {}))
    name, options = backbone_name_for(dataset.modality, backbone), backbone_options(image_size, max_length, mirror)
    target_set, pool = _side_inputs(dataset, target, adapt, unlabeled, seed, columns or {})
    net = create_backbone(name, **options)
    train_set, val_set, test_set, classes = _three_splits(dataset, f"{name}; {mode}")
    shift_summary = None if target_set is None else measure_shift(train_set, target_set, net, seed=seed,
                                                                  engine=engine, cache_dir=cache_dir).summary
    result = train(net, train_set, val_set, classes, mode=mode, config=finetune_config, seed=seed, engine=engine,
                   cache_dir=cache_dir, depth_advisor=_layer_depth if auto_unfreeze else None, keep_val_proba=True,
                   pool=pool, pool_method=unlabeled_method, zero_shot_prior=zero_shot_prior, describe=describe)
    calibrate(result, val_set.label_ids(classes))  # temperature scaling, where it helps on validation
    model = Model(net, result.head, classes, backbone_options=options, finetuned=result.finetuned, device=device)
    proba, metrics = _adapted_and_tested(model, result, (train_set, val_set, test_set), target_set, classes, adapt=adapt,
                                         seed=seed, engine=engine, cache_dir=cache_dir, started=started)
    scratch = None
    if baseline and is_main_process():  # the scratch model comes back only where auto ships it
        metrics["baseline"], scratch = scratch_comparison(train_set, val_set, test_set, classes, proba, seed=seed,
                                                          mirror=mirror, val_proba=result.val_proba, mode=mode,
                                                          fit_seconds=metrics["seconds"])
    model.info = _record(result, dataset, metrics, seed=seed, ratios=ratios, shift=shift_summary, test=test)
    if scratch is not None:  # auto: the model from scratch beat transfer on validation beyond noise
        model, proba = _scratch_shipped(scratch, model.info, test_set, classes, started, backbone=name)
    if out is not None and is_main_process():
        save(model, out, test_set, proba)
    return model


@on_device
def zero_shot(classes, *, test=None, unlabeled=None, describe=None, backbone: str | None = None,
              out: str | Path | None = None, max_length: int | None = None, engine: str = "auto",
              cache_dir: str | Path | None = None, columns: dict | None = None, device: str = "auto") -> Model:
    """A model from class names or short descriptions alone, no labels (:mod:`headstart.transfer.zero_shot`).

    Args:
        classes: the class names, ``"negative,positive"`` or a list.
        test: a labeled file (or Dataset) to measure it on; its texts calibrate it when ``unlabeled`` is None.
        unlabeled: unlabeled texts like those to predict (a file or Dataset), to calibrate on.
        describe: class -> description, ``"negative=a negative movie review,..."`` or a mapping.
        backbone: a text backbone (default ``minilm-l6``).
        out: the model folder to write (with ``report.html`` where there is a test); nothing when None.
        max_length: tokens per text (default: the backbone's).
        engine: as for :func:`fit`.
        cache_dir: as for :func:`fit`.
        columns: as for :func:`fit`.
        device: as for :func:`fit`.

    Returns:
        The :class:`~headstart.model.Model`, test metrics in ``.metrics`` (empty without ``test``).
    """
    model, test_set, proba = zero_shot_model(classes, describe=describe, test=test, unlabeled=unlabeled,
                                             backbone=backbone, backbone_options=backbone_options(max_length=max_length),
                                             engine=engine, cache_dir=cache_dir, columns=columns, device=device)
    if out is not None:  # without a labeled test there is nothing to report: the folder alone
        save(model, out, test_set, proba) if model.metrics else model.save(out)
    return model


def _side_inputs(dataset: Dataset, target, adapt: str, unlabeled, seed: int,
                 columns: dict) -> tuple[Dataset | None, Dataset | None]:
    """The seed set, and the target and unlabeled pool read: before any model loads."""
    seed_everything(seed)
    target_set = read_target(target, adapt, dataset.modality, seed=seed, **columns)
    pool = None if unlabeled is None else read_unlabeled(unlabeled, dataset.modality, exclude=dataset.hashes,
                                                         **columns)
    return target_set, pool


def _record(result, dataset: Dataset, metrics: dict, *, seed: int, ratios, shift: dict | None, test=None) -> dict:
    """A fitted model's info: settings, test metrics (with the pool's use), history, manifest, the target's shift.

    The manifest names a separate test file, where there was one: the split rebuilt from ``data`` holds no test.
    """
    if "unlabeled" in result.config:
        metrics["unlabeled"] = result.config["unlabeled"]
    counts = {split: dataset.splits.count(split) for split in ("train", "val", "test")}
    config = {**result.config, "seed": seed, "ratios": None if ratios is None else list(ratios), "counts": counts}
    return {"config": config, "metrics": metrics, "history": result.history, **({"shift": shift} if shift else {}),
            "manifest": {"data_hash": dataset.content_hash(), "data": _source_of(dataset), "seed": seed,
                         **({} if test is None else {"test": _source_of(test)})}}


def _source_of(data) -> str:
    """Where ``data`` (a path or a Dataset) came from, as an absolute path.

    Exporting (its calibration sample) and re-measuring then find it from any folder; empty for a
    dataset made in memory.
    """
    source = data.source if isinstance(data, Dataset) else str(data)
    return str(Path(source).absolute()) if source else ""


def _scratch_shipped(scratch, info: dict, test_set: Dataset, classes: list[str], started: float, *,
                     backbone: str) -> tuple[ScratchModel, np.ndarray]:
    """The model from scratch as the fit's result (its test metrics, the transfer run's record kept), and its test probabilities."""
    proba = scratch.predictor.predict_proba(test_set.items)
    metrics = classification_metrics(test_set.label_ids(classes), proba, classes)
    transfer_metrics = info["metrics"]
    return ScratchModel(scratch.predictor, classes, name=scratch.name, method=scratch.method, info={
        **info, "config": {**info["config"], "shipped": "scratch", "transfer_backbone": backbone},
        "metrics": {**metrics, "seconds": time.perf_counter() - started, "baseline": transfer_metrics["baseline"],
                    **({"adaptation": transfer_metrics["adaptation"]} if "adaptation" in transfer_metrics else {})}}), proba


def _three_splits(dataset: Dataset, run: str) -> tuple[Dataset, Dataset, Dataset, list[str]]:
    """The train, validation and test splits, and the classes in the training split's order; said with ``run``."""
    train_set, val_set, test_set = (dataset.split(s) for s in ("train", "val", "test"))
    if len(test_set) == 0:
        raise DataError("there is no test split to evaluate on", where=dataset.source,
                        fix="give --test FILE, or a test share in --split")
    classes = train_set.classes
    say(f"{len(train_set)} train, {len(val_set)} val, {len(test_set)} test; {len(classes)} classes; {run}")
    return train_set, val_set, test_set, classes


def _layer_depth(backbone, train_set: Dataset, val_set: Dataset, classes: list[str], seed: int) -> dict:
    """The layer-wise probes' report, whose ``unfreeze`` sets the fine-tune's depth (``auto_unfreeze``)."""
    from headstart.transfer.layers import layer_transfer

    return layer_transfer(backbone, train_set, val_set, classes, seed=seed).to_dict()


def predict(model: Model | ExportedModel | str | Path, data, *, device: str | None = None,
            **columns) -> tuple[Dataset, np.ndarray]:
    """Read ``data`` (labels optional) and return it with class probabilities (n, k).

    ``device`` as for :func:`load` (None: a Model's own, ``auto`` for a folder).
    """
    resolve_device(device)
    model = model if isinstance(model, (Model, ScratchModel, ExportedModel)) else load(model, device=device or "auto")
    dataset = read_dataset(data, require_labels=False, **columns) if not isinstance(data, Dataset) else data
    _check_modality(model, dataset)
    return dataset, _proba(model, dataset, device)


def _proba(model: Model | ScratchModel | ExportedModel, dataset: Dataset, device: str | None) -> np.ndarray:
    """Probabilities on ``device`` where the model runs on one (a Model's own device where None)."""
    return model.predict_proba(dataset, device=device) if isinstance(model, Model) else model.predict_proba(dataset)


def predict_table(model: Model | ExportedModel | str | Path, data: str | Path, *, id_column: str | None = None,
                  text_column: str = "text", path_column: str = "path",
                  device: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Predictions a user can join: the input's columns, then the prediction and its probabilities.

    Args:
        model: a Model, or its folder.
        data: a CSV/TSV/JSONL file or a folder of images; labels not needed.
        id_column: the column naming each row: it goes first and must be filled in and unique.
        text_column: the column of the texts.
        path_column: the column of image paths (a folder's images are listed under this name,
            relative to the folder).
        device: as for :func:`load` (None: a Model's own, ``auto`` for a folder).

    Returns:
        (header, rows): one row per input row, in its order, every cell a string; the columns are
        the input's, then ``prediction``, ``confidence`` and ``p_<class>`` in ``model.classes`` order.

    Raises:
        DataError: unreadable data, data of the other modality, or a missing, empty or repeated id.
    """
    # The device and the data first: a bad row is found before the model's seconds of loading.
    resolve_device(device)
    table = read_input_table(data, id_column=id_column, text_column=text_column, path_column=path_column)
    model = model if isinstance(model, (Model, ScratchModel, ExportedModel)) else load(model, device=device or "auto")
    _check_modality(model, table.dataset)
    return table.with_predictions(model.classes, _proba(model, table.dataset, device))


def _check_modality(model: Model | ExportedModel, dataset: Dataset) -> None:
    if dataset.modality != model.modality:
        raise DataError(f"the model reads {model.modality}, the data are {dataset.modality}",
                        where=dataset.source)


def label_init(pool, *, labels=None, db="labels.db", **options):
    """Start a model-assisted labeling project from a pool (see :func:`headstart.labeling.init_project`)."""
    from headstart.labeling import init_project

    return init_project(pool, labels=labels, db=db, **options)


def label_open(db="labels.db", **options):
    """Open a labeling project: ``.next(n)``, ``.add(item, label)``, ``.status()``.

    See :class:`headstart.labeling.LabelingProject`.
    """
    from headstart.labeling import open_project

    return open_project(db, **options)
