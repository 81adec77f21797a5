"""Studies to run before fitting: rank backbones, draw learning curves, probe layers, measure a shift.

Each reads labeled data as :func:`headstart.fit` does and returns a report that can save itself
(JSON, a plot and an HTML page); none trains a model to keep.

Example:
    import headstart
    headstart.rank("reviews.csv").table()          # which backbone to fine-tune, best first
    headstart.curve("reviews.csv").sentence()      # how many labels transfer saves
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from headstart.backbones import backbone_name_for, backbone_options, create_backbone
from headstart.compute.device import on_device
from headstart.data import Dataset, read_dataset
from headstart.data.prepare import prepare, read
from headstart.data.splits import concat


@on_device
def rank(data, backbones: Sequence[str] | None = None, *, score: str | None = None, max_items: int | None = 2000,
         out: str | Path | None = None, seed: int = 0, ratios: Sequence[float] | None = None,
         image_size: int | None = None, max_length: int | None = None, engine: str = "auto",
         cache_dir: str | Path | None = None, columns: dict | None = None, device: str = "auto"):
    """Rank candidate backbones on the training split without fine-tuning any.

    Args:
        data: labeled data as for :func:`headstart.fit` (only the training split is read for scores).
        backbones: registry names; default: every registered backbone of the data's modality.
        score: ``hscore`` (default: it ranked best in the ranking benchmark), ``logme``, ``nce``, ``leep``
            or ``probe``.
        max_items: score a stratified subset of at most this many training items.
        out: a folder for ``ranking.json``, ``ranking.png`` and ``ranking.html`` (nothing written when None).
        seed: seeds the split and the subset.
        ratios: train/val/test fractions when the data has no split column (as for :func:`headstart.fit`).
        image_size: the side of images fed to image backbones (default: each backbone's).
        max_length: tokens per text for text backbones (default: each backbone's).
        engine: ``auto``/``onnx``/``torch``: where the forward passes run.
        cache_dir: the features cache (default ``$HEADSTART_CACHE`` or ``~/.cache/headstart``).
        columns: column names: ``text_column``, ``label_column``, ``split_column``, ``path_column``.
        device: where the forward passes run, and are timed (as for :func:`headstart.fit`).

    Returns:
        A :class:`~headstart.transfer.rank.Ranking`: ``rows`` best first, ``table()``, ``plot()``.
    """
    from headstart.transfer.rank import DEFAULT_SCORE, rank_backbones

    dataset = prepare(data, ratios=ratios, seed=seed, **(columns or {}))
    options = backbone_options(image_size, max_length)
    ranking = rank_backbones(dataset.split("train"), backbones, score=score or DEFAULT_SCORE, max_items=max_items,
                             seed=seed, engine=engine, cache_dir=cache_dir, backbone_options=options)
    if out is not None:
        ranking.save(out)
    return ranking


@on_device
def curve(data, *, backbone: str | None = None, sizes: Sequence | None = None, seeds: int = 3, test=None,
          out: str | Path | None = None, seed: int = 0, ratios: Sequence[float] | None = None,
          image_size: int | None = None, max_length: int | None = None, engine: str = "auto",
          cache_dir: str | Path | None = None, columns: dict | None = None, scratch_budget_s: float | None = 60.0,
          device: str = "auto"):
    """Learning curves: test accuracy against labels a class, with transfer and without.

    With transfer is a probe on the backbone's frozen features, without is the best on the
    point's validation draw of the from-scratch candidates that ``fit`` checks against; each point
    is averaged over ``seeds`` draws of labels from the train and validation
    splits.

    Args:
        data: labeled data as for :func:`headstart.fit`.
        backbone: a registry name (default: the modality's default backbone).
        sizes: labels a class, ints and ``"all"`` (default 4, 8, 16, ... all).
        seeds: draws of labels at each size.
        test: a separate labeled file (or Dataset) for testing.
        out: a folder for ``curve.json``, ``curve.png`` and ``curve.html`` (nothing written when None).
        seed: seeds the split.
        ratios: train/val/test fractions when the data has no split column (as for :func:`headstart.fit`).
        image_size: the side of images fed to an image backbone (default: the backbone's).
        max_length: tokens per text for a text backbone (default: the backbone's).
        engine: ``auto``/``onnx``/``torch``: where the forward passes run.
        cache_dir: the features cache (default ``$HEADSTART_CACHE`` or ``~/.cache/headstart``).
        columns: column names: ``text_column``, ``label_column``, ``split_column``, ``path_column``.
        scratch_budget_s: seconds for the scratch candidates at each point (None: no limit).
        device: where the frozen features are computed (as for :func:`headstart.fit`).

    Returns:
        A :class:`~headstart.transfer.curve.Curve` (``sentence()`` says how many labels transfer saved,
        or why that is not computed when a curve falls as labels grow).
    """
    from headstart.transfer.curve import check_sizes, learning_curve

    sizes = check_sizes(sizes)
    dataset = prepare(data, test=test, ratios=ratios, seed=seed, **(columns or {}))
    name = backbone_name_for(dataset.modality, backbone)
    options = backbone_options(image_size, max_length)
    pool = concat(dataset.split("train"), dataset.split("val"))
    result = learning_curve(pool, dataset.split("test"), create_backbone(name, **options), pool.classes,
                            sizes=sizes, seeds=seeds, engine=engine, cache_dir=cache_dir,
                            scratch_budget_s=scratch_budget_s)
    if out is not None:
        result.save(out)
    return result


def layers(data, *, backbone: str | None = None, out: str | Path | None = None, val=None, seed: int = 0,
           ratios: Sequence[float] | None = None, max_items: int | None = 1000, image_size: int | None = None,
           max_length: int | None = None, columns: dict | None = None):
    """Probe accuracy of each layer group's features on the validation split, and the fine-tuning depth it suggests.

    Args:
        data: labeled data as for :func:`headstart.fit`.
        backbone: a registry name (default: the modality's default backbone).
        out: a folder for ``layers.json``, ``layers.png`` and ``layers.html`` (nothing written when None).
        val: a separate labeled file (or Dataset) for validation.
        seed: seeds the split, the subset and the probes.
        ratios: train/val/test fractions when the data has no split column (as for :func:`headstart.fit`).
        max_items: probe a stratified subset of at most this many training items.
        image_size: the side of images fed to an image backbone (default: the backbone's).
        max_length: tokens per text for a text backbone (default: the backbone's).
        columns: column names: ``text_column``, ``label_column``, ``split_column``, ``path_column``.

    Returns:
        A :class:`~headstart.transfer.layers.LayerReport` with the recommended ``unfreeze``.
    """
    from headstart.transfer.layers import layer_transfer

    dataset = prepare(data, val=val, ratios=ratios, seed=seed, **(columns or {}))
    name = backbone_name_for(dataset.modality, backbone)
    options = backbone_options(image_size, max_length)
    train = dataset.split("train")
    report = layer_transfer(create_backbone(name, **options), train, dataset.split("val"), train.classes, seed=seed,
                            max_items=max_items)
    if out is not None:
        report.save(out)
    return report


def shift(source, target, *, backbone: str | None = None, out: str | Path | None = None, seed: int = 0,
          max_items: int = 500, permutations: int = 99, image_size: int | None = None, max_length: int | None = None,
          engine: str = "auto", cache_dir: str | Path | None = None, columns: dict | None = None):
    """Is ``target`` different from the labeled ``source``, and how (domain classifier, class priors)?

    Args:
        source: labeled data (file, folder or Dataset), all of it read.
        target: data of the same modality, labels optional.
        backbone: a registry name (default: the modality's default backbone).
        out: a folder for ``shift.json``, ``shift.png`` and ``shift.html`` (nothing written when None).
        seed: seeds the subsamples, folds, permutations and probe.
        max_items: items a side at most.
        permutations: permutations of the p-value at most.
        image_size: the side of images fed to an image backbone (default: the backbone's).
        max_length: tokens per text for a text backbone (default: the backbone's).
        engine: ``auto``/``onnx``/``torch``: where the forward passes run.
        cache_dir: the features cache (default ``$HEADSTART_CACHE`` or ``~/.cache/headstart``).
        columns: column names: ``text_column``, ``label_column``, ``path_column``.

    Returns:
        A :class:`~headstart.transfer.shift.ShiftReport` (``summary["shifted"]``, ``sentence()``).
    """
    from headstart.transfer.shift import check_pair, check_settings, measure_shift

    check_settings(max_items, permutations)
    source_set = read(source, **(columns or {}))
    target_set = target if isinstance(target, Dataset) else read_dataset(target, require_labels=False,
                                                                         **(columns or {}))
    check_pair(source_set, target_set)  # before the backbone's seconds of loading
    name = backbone_name_for(source_set.modality, backbone)
    report = measure_shift(source_set, target_set, create_backbone(name, **backbone_options(image_size, max_length)),
                           seed=seed, max_items=max_items, permutations=permutations, engine=engine,
                           cache_dir=cache_dir)
    if out is not None:
        report.save(out)
    return report
