"""The trainer: a backbone and labeled train/validation splits in; a head, a tuned backbone and a history out.

Its strategies:

- ``probe``: a linear head on frozen features (:mod:`headstart.learn.probe`); always fitted, as the
  head a fine-tune starts from and the model the ``auto`` mode falls back to.
- ``contrastive``: few-shot text; the encoder is tuned on sentence pairs, then a probe is fitted on
  the tuned features (:mod:`headstart.learn.contrastive`).
- ``staged``: cross-entropy with layer groups unfrozen from the top (:mod:`headstart.learn.finetune`).

With an unlabeled pool and few labels, a contrastive text fine-tune and a staged image one train on
a teacher's confident pseudo-labels of the pool too (:mod:`headstart.learn.pseudo_label_tuning`): for
images the probe trained on the pool, for text a first fine-tune on the labels alone.

Mode ``probe`` stops after the probe; ``finetune`` runs the fine-tuning strategy the configuration
resolves to; ``auto`` does too, and keeps whichever scored better on the validation split by more than
the standard error of the difference. Closer scores cannot be told apart; then it keeps the model that
wins on average in the benchmarks at this many labels (:mod:`.auto_choice`). A new strategy is a
function of the same shape added to :data:`FINETUNE_STRATEGIES`.

No strategy trains on validation items: they choose the probe's strength, the kept epoch and the
fallback, and are scored. Once every choice is made, the chosen model is refit on train+validation,
as a grid search's final refit does: more data, and nothing is judged on validation after it. The
probe is fitted again on every label (:func:`headstart.learn.probe.final_probe`); contrastive tuning
is redone on pairs of every labeled text; a staged fine-tune, judged epoch by epoch, is kept as it is.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from headstart.backbones.base import Backbone
from headstart.compute.device import current_device
from headstart.compute.processes import main_process_first
from headstart.data.dataset import Dataset
from headstart.data.splits import concat
from headstart.errors import DataError
from headstart.features.extract import cached_features, compute_features
from headstart.learn import pseudo_label_tuning
from headstart.learn.auto_choice import auto_keeps_probe
from headstart.learn.config import FinetuneConfig, check_mode
from headstart.learn.contrastive import contrastive_tune
from headstart.learn.finetune import finetune, seed_everything
from headstart.learn.head import LinearHead, fit_head, stratified_folds
from headstart.learn.pool_training import judge_pool, pool_head, pool_sample
from headstart.learn.prior import prior_sentence, probe_with_prior
from headstart.learn.probe import SMALL_DATA, final_probe, fit_probe, score_head
from headstart.learn.zero_shot import ZeroShotHead, parse_descriptions, zero_shot_head
from headstart.progress import say


@dataclass
class Splits:
    """What every strategy trains and chooses on.

    Attributes:
        backbone: the backbone being trained.
        train: the labeled training split.
        val: the labeled validation split.
        classes: label names, in the head's output order.
        seed: seeds the probe's folds and everything fine-tuning draws.
        engine: where frozen forward passes run: ``auto``, ``onnx`` or ``torch``.
        cache_dir: the feature cache's folder (None: the default one).
        pretrained: the backbone's weights before any fine-tune, where one may run (None: the probe
            only). One copy serves every step that goes back to them (a contrastive refit, the
            teacher's run, ``auto`` keeping the probe): each copy of an encoder costs its size in memory.
        prior: the zero-shot head of the class names that the probe is blended with (:mod:`.prior`,
            :func:`class_name_prior`), or None.
    """

    backbone: Backbone
    train: Dataset
    val: Dataset
    classes: list[str]
    seed: int = 0
    engine: str = "auto"
    cache_dir: str | Path | None = None
    pretrained: dict | None = field(default=None, repr=False)
    prior: ZeroShotHead | None = field(default=None, repr=False)

    @property
    def train_y(self) -> np.ndarray:
        """Class ids of the training items, in :attr:`classes` order."""
        return self.train.label_ids(self.classes)

    @property
    def val_y(self) -> np.ndarray:
        """Class ids of the validation items, in :attr:`classes` order."""
        return self.val.label_ids(self.classes)

    def features(self, dataset: Dataset, *, tuned: bool = False) -> np.ndarray:
        """Features (n, d) of ``dataset`` under the backbone's current weights.

        The pretrained weights' features go through the on-disk cache; once the backbone has been
        tuned (``tuned=True``) they are computed afresh.
        """
        if tuned:
            return compute_features(self.backbone, dataset.items, engine=self.engine, cache_dir=self.cache_dir,
                                    tuned=True)
        # Of several processes (data-parallel training), the main one fills the cache and the others read it.
        with main_process_first(current_device()):
            return cached_features(self.backbone, dataset.items, dataset.hashes, engine=self.engine,
                                   cache_dir=self.cache_dir)


@dataclass
class Outcome:
    """One strategy's result.

    Attributes:
        head: the trained head.
        tuned: whether the backbone's weights changed.
        val_accuracy: the model's accuracy on the validation split.
        history: rows for the report's training curves.
        record: what was chosen, for the model's config.
        refit: fits the final model on train+validation, returning its head (None: keep ``head``).
        val_proba: the validation split's held-out probabilities where ``head`` cannot give them
            (None: ``head``'s own).
        pool_proba: ``head``'s probabilities of the pool items it was judged with (:func:`sampled`),
            where it has seen a pool (None: it has not).
        weights: the backbone's weights ``head`` was trained on, where the backbone has moved on since
            (None: its current ones).
    """

    head: LinearHead
    tuned: bool
    val_accuracy: float
    history: list[dict] = field(default_factory=list)
    record: dict = field(default_factory=dict)
    refit: Callable[[], LinearHead] | None = None
    val_proba: np.ndarray | None = None
    pool_proba: np.ndarray | None = None
    weights: dict | None = None


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        head: the final head.
        finetuned: whether the backbone was left with tuned weights.
        history: the probe's row, then a row a fine-tuning epoch.
        config: every choice, resolved (mode, probe, finetune, validation, auto, layers).
        val_proba: the chosen model's validation probabilities (m, k) before the refit on
            train+validation, so held out (None unless asked for, or without validation items).
    """

    head: LinearHead
    finetuned: bool
    history: list[dict]
    config: dict
    val_proba: np.ndarray | None = None


def _probe(splits: Splits, *, tuned: bool = False, stage: str = "head (probe)") -> Outcome:
    """A probe on the backbone's features as they are now."""
    train_x, val_x = splits.features(splits.train, tuned=tuned), splits.features(splits.val, tuned=tuned)
    train_y, val_y = splits.train_y, splits.val_y
    n_classes = len(splits.classes)
    head, info = fit_probe(train_x, train_y, val_x, val_y, n_classes, seed=splits.seed)
    prior = None if tuned or splits.prior is None else splits.prior.head
    if prior is not None:  # the share is chosen on the training split, the blend scored on validation
        head, blend = probe_with_prior(prior, head, train_x, train_y, n_classes, info["C"], seed=splits.seed)
        info["zero_shot_prior"] = {**blend, "descriptions": splits.prior.descriptions}
        if len(val_y):
            info["val_accuracy"], info["val_loss"] = score_head(head, val_x, val_y, n_classes)
        say(prior_sentence(info["zero_shot_prior"]))
    row = {"epoch": 0, "stage": stage, "val_accuracy": info["val_accuracy"], "val_loss": info["val_loss"]}

    def refit() -> LinearHead:
        final, c = final_probe(train_x, train_y, val_x, val_y, n_classes, info["C"], seed=splits.seed)
        if prior is None:
            return final
        all_x, all_y = np.vstack([train_x, val_x]), np.concatenate([train_y, val_y])
        final, blend = probe_with_prior(prior, final, all_x, all_y, n_classes, c, seed=splits.seed)
        info["zero_shot_prior"] = {**blend, "descriptions": splits.prior.descriptions, "chosen_on": "every label"}
        return final

    return Outcome(head, tuned, info["val_accuracy"], [row], {"probe": info}, refit=refit)


def class_name_prior(splits: Splits, pool: Dataset | None, describe=None, *, wanted: bool = True
                     ) -> ZeroShotHead | None:
    """The class names' zero-shot head (:mod:`.zero_shot`) as the probe's prior, or None.

    For a text backbone and fewer than :data:`~headstart.learn.probe.SMALL_DATA` labels, where
    ``wanted``; each class described by ``describe`` (``"a=...,b=..."`` or a mapping) where given, else
    by its name; calibrated on the pool where there is one (the sample of it that training uses,
    :func:`sampled`), else on the labeled texts (not their labels).
    """
    if describe and not wanted:
        raise DataError("the class descriptions are for the zero-shot prior, which is turned off", where="--describe",
                        fix="leave --describe out, or the prior on (drop --no-zero-shot-prior)")
    descriptions = parse_descriptions(describe, splits.classes)  # a wrong class fails before any work
    if describe and splits.backbone.modality != "text":
        raise DataError("class descriptions are read by a text encoder; this is an image fit", where="--describe",
                        fix="leave --describe out")
    labeled = concat(splits.train, splits.val)
    if not wanted or splits.backbone.modality != "text" or len(labeled) >= SMALL_DATA:
        return None
    calibrate_on = sampled(pool, splits.seed) if pool is not None and len(pool) > 1 else labeled

    def embed(texts: list[str]) -> np.ndarray:
        return compute_features(splits.backbone, texts, engine=splits.engine, cache_dir=splits.cache_dir,
                                description="class names")

    return zero_shot_head(embed, splits.classes, descriptions, pool_features=splits.features(calibrate_on))


def contrastive(splits: Splits, config: FinetuneConfig, start: Outcome) -> Outcome:
    """Tune the encoder on pairs of training texts, then fit a probe on the tuned features.

    This held-out run is shorter than the final one (``held_out_epochs`` passes, or
    ``held_out_pairs_per_item`` sampled pairs an item): it is judged on validation and decides. Its
    refit tunes the pretrained encoder again, on pairs of every labeled text: with a few labels a
    class, the validation split holds a fifth of them, too many to leave out of the final model.
    """
    judged = (replace(config, pairs_per_item=config.held_out_pairs_per_item) if config.pairing == "sampled"
              else replace(config, epochs=config.held_out_epochs))
    history = contrastive_tune(splits.backbone, splits.train.items, splits.train_y, judged, seed=splits.seed)
    outcome = _probe(splits, tuned=True, stage="head (probe on tuned features)")
    outcome.history = history + [{**outcome.history[0], "epoch": len(history) + 1}]

    def refit() -> LinearHead:
        splits.backbone.module.load_state_dict(splits.pretrained)
        labeled = concat(splits.train, splits.val)
        contrastive_tune(splits.backbone, labeled.items, labeled.label_ids(splits.classes), config, seed=splits.seed)
        return _probe(splits, tuned=True).refit()

    outcome.refit = refit
    return outcome


def staged(splits: Splits, config: FinetuneConfig, start: Outcome) -> Outcome:
    """Fine-tune with layer groups unfrozen from the top, starting from the probe's head."""
    model, history = finetune(splits.backbone, splits.train, splits.val, splits.classes, start.head, config,
                              seed=splits.seed, engine=splits.engine, cache_dir=splits.cache_dir)
    head = LinearHead(model.head.weight.detach().numpy().copy(), model.head.bias.detach().numpy().copy())
    kept = next(row["val_accuracy"] for row in history if row["kept"])
    return Outcome(head, True, kept, history)


def sampled(pool: Dataset, seed: int) -> Dataset:
    """The pool items training uses: all of a small pool, a seeded random sample of a big one."""
    return pool.subset(pool_sample(len(pool), seed))


def with_pool(splits: Splits, chosen: Outcome, pool: Dataset, method: str, c: float, *, refit: bool) -> Outcome:
    """``chosen`` with its head trained on the unlabeled ``pool`` too, where that pays (:mod:`.pool_training`).

    The pool's features are the chosen model's (tuned ones after a fine-tune). The methods are judged
    out of fold over every label when the features are frozen and the labels few (as the probe's
    strength is), else on the validation split: a tuned backbone has seen the training labels. After
    a contrastive fine-tune the refit tunes the encoder on every label again, so the pool is embedded
    anew before the chosen method's final head; a staged fine-tune's head is the one compared with.

    The backbone itself learns from the pool in a fine-tune with few labels: a model this returns
    labels the pool first (``pool_proba``; :func:`_teacher`). Not tried: FixMatch-style weak/strong
    augmentation consistency for images (Sohn et al. 2020), which trains the backbone for hundreds of
    epochs over the pool, far past this CPU's minutes. The head-level methods are what the pool
    benchmark measures.
    """
    pool = sampled(pool, splits.seed)
    n_classes, n_train, tuned = len(splits.classes), len(splits.train), chosen.tuned
    fit = partial(fit_head, n_classes=n_classes, c=c, seed=splits.seed)
    y = np.concatenate([splits.train_y, splits.val_y])

    def views() -> tuple[np.ndarray, np.ndarray]:  # (labeled features: train then validation, pool features)
        return (np.vstack([splits.features(splits.train, tuned=tuned), splits.features(splits.val, tuned=tuned)]),
                splits.features(pool, tuned=tuned))

    x, pool_x = views()
    if (not tuned and len(y) < SMALL_DATA) or len(splits.val) == 0:
        folds, judged_on = stratified_folds(y, seed=splits.seed), f"out of fold over {len(y)} labels"
    else:
        folds, judged_on = [(np.arange(n_train), np.arange(n_train, len(y)))], "the validation split"
    staged_head = tuned and chosen.refit is None and len(folds) == 1
    labeled_only = (lambda *_: chosen.head) if staged_head else None
    choice = judge_pool(fit, x, y, pool_x, n_classes, folds=folds, method=method, labeled_only=labeled_only,
                        judged_on=judged_on)
    say(choice.record.get("sentence", "the unlabeled pool: not used"))
    record = {**chosen.record, "unlabeled": choice.record}
    if choice.method == "none":
        return replace(chosen, record=record, pool_proba=chosen.head.proba(pool_x))
    val_proba = choice.held_out_proba[n_train:]

    def refit_with_pool() -> LinearHead:
        nonlocal x, pool_x
        if tuned and chosen.refit is not None:  # contrastive: the encoder is tuned on every label again
            chosen.refit()
            x, pool_x = views()
        return pool_head(choice, fit, x, y, pool_x, n_classes, labeled_only=labeled_only)

    # Trained on the training split even when a refit follows: it labels the pool for a self-trained fine-tune.
    head = pool_head(choice, fit, x[:n_train], y[:n_train], pool_x, n_classes, labeled_only=labeled_only)
    return Outcome(head, tuned, choice.record["accuracy"][choice.candidate], chosen.history, record,
                   refit=refit_with_pool if refit else None, val_proba=val_proba, pool_proba=head.proba(pool_x))


FINETUNE_STRATEGIES: dict[str, Callable[[Splits, FinetuneConfig, Outcome], Outcome]] = {
    "staged": staged, "contrastive": contrastive}
DepthAdvisor = Callable[[Backbone, Dataset, Dataset, list, int], dict]


def _tuning_plan(splits: Splits, config: FinetuneConfig, record: dict, start: Outcome, probe: Outcome,
                 pooled: Callable[[Outcome], Outcome] | None, pool: Dataset | None,
                 depth_advisor: DepthAdvisor | None) -> tuple[FinetuneConfig, Splits, Outcome, Outcome | None]:
    """(settings, the splits it trains on, the probe it is compared with, its teacher or None); ``record`` notes them.

    A fine-tune with few labels and a pool (images staged, text contrastive) learns a teacher's confident
    pool pseudo-labels too (:mod:`.pseudo_label_tuning`, :func:`_teacher`); the teacher has learned from
    the pool (``pooled``).
    """
    teacher = None
    backbone, n_classes = splits.backbone, len(splits.classes)
    resolved, tuning = config.resolved(backbone, len(splits.train), n_classes), splits
    if pooled is not None and pseudo_label_tuning.applies(backbone.modality, resolved.strategy, len(splits.train),
                                                          pool):
        probe = probe if probe is not start else pooled(start)
        teacher = _teacher(splits, resolved, start, probe, pooled)
        train, record["pseudo_labels"] = pseudo_label_tuning.with_pseudo_labels(
            splits.train, sampled(pool, splits.seed), teacher.pool_proba, splits.classes)
        record["pseudo_labels"]["teacher_pool_method"] = teacher.record.get("unlabeled", {}).get("method", "none")
        record["pseudo_labels"]["teacher"] = "fine-tune" if teacher.tuned else "probe"
        say(f"self-training the fine-tune: {record['pseudo_labels']['items']} pool items join the "
            f"{len(splits.train)} labels, labeled by the {record['pseudo_labels']['teacher']}")
        tuning = replace(splits, train=train)
        record["pseudo_labels"]["teacher_finetune"] = asdict(resolved) if teacher.tuned else None
        resolved = pseudo_label_tuning.settings(config, resolved.strategy, len(splits.train), len(train)).resolved(
            backbone, len(train), n_classes)  # epochs for the bigger split
    if depth_advisor is not None and resolved.strategy == "staged":
        record["layers"] = depth_advisor(backbone, splits.train, splits.val, list(splits.classes), splits.seed)
        resolved.unfreeze = record["layers"]["unfreeze"]
        say(record["layers"]["sentence"])
    record["finetune"] = asdict(resolved)
    return resolved, tuning, probe, teacher


def _student_or_teacher(student: Outcome, teacher: Outcome | None, splits: Splits, record: dict) -> Outcome:
    """The self-trained fine-tune, unless the fine-tune it learned from scored higher on validation.

    A fine-tune teacher learned from the labels alone; the student from them and its pseudo-labels,
    which carry its mistakes. Kept only when it scores at least the teacher on the validation split
    (the real labels), both having learned from the pool: on SST-2 at 100 labels the student fell 4.6
    points below the labels alone on one seed of five, and this rule gave 77.5% against 76.6% for the
    student always, 81.5% at 200 as before (5 seeds; benchmarks/README.md, stop 40).
    The teacher's encoder comes back; its refit tunes the pretrained one on every label, as the labels
    alone would.
    """
    if teacher is None or not teacher.tuned:
        return student
    scores = {"student": validation_accuracy(student, splits.val_y),
              "teacher": validation_accuracy(teacher, splits.val_y)}
    record["pseudo_labels"].update(validation=scores, kept=scores["student"] >= scores["teacher"])
    if record["pseudo_labels"]["kept"]:
        teacher.weights = None  # a whole encoder's worth of memory, not needed once the student wins
        return student
    record["finetune"] = record["pseudo_labels"]["teacher_finetune"]
    record.update(teacher.record)
    splits.backbone.module.load_state_dict(teacher.weights)
    say(f"kept the fine-tune on the labels alone: {scores['teacher']:.1%} on the validation split, the one that "
        f"learned pseudo-labels too {scores['student']:.1%}")
    return teacher


def _teacher(splits: Splits, resolved: FinetuneConfig, start: Outcome, probe: Outcome,
             pooled: Callable[[Outcome], Outcome]) -> Outcome:
    """The model whose ``pool_proba`` pseudo-labels the pool for a self-trained fine-tune.

    Images: ``probe``, the probe trained on the pool. Text: the contrastive fine-tune's judged run on
    the labels alone, its head trained on the pool too; the encoder is then put back as it was. On
    SST-2 at 200 labels the pooled probe taught the text fine-tune worse than the labels alone did
    (79.7 against 80.1%, 5 seeds) and the fine-tune taught it better (81.5%; benchmarks/README.md).
    """
    if resolved.strategy != "contrastive":
        return probe
    teacher = pooled(contrastive(splits, resolved, start))
    teacher.weights = copy.deepcopy(splits.backbone.module.state_dict())  # kept, should the student lose to it
    splits.backbone.module.load_state_dict(splits.pretrained)
    return teacher


def _goes_back_to_pretrained(mode: str, config: FinetuneConfig, splits: Splits) -> bool:
    """Whether a step of this run reloads the pretrained weights, so that :attr:`Splits.pretrained` is needed.

    ``auto`` may keep the probe; a contrastive fine-tune's refit and teacher start from them again. A
    staged fine-tune in ``finetune`` mode never does: no copy (an encoder of 300M parameters is 1.2 GB).
    """
    if mode == "probe":
        return False
    return mode == "auto" or config.resolved(splits.backbone, len(splits.train), len(splits.classes)).strategy \
        == "contrastive"


def validation_accuracy(outcome: Outcome, val_y: np.ndarray) -> float:
    """``outcome``'s accuracy on the validation split: of its held-out probabilities where it has them."""
    if outcome.val_proba is not None and len(val_y):
        return float((outcome.val_proba.argmax(1) == val_y).mean())
    return outcome.val_accuracy


def train(backbone: Backbone, train_set: Dataset, val_set: Dataset, classes: list[str], *, mode: str = "auto",
          config: FinetuneConfig | None = None, seed: int = 0, engine: str = "auto",
          cache_dir: str | Path | None = None, depth_advisor: DepthAdvisor | None = None,
          refit: bool = True, keep_val_proba: bool = False, pool: Dataset | None = None,
          pool_method: str = "auto", zero_shot_prior: bool = True, describe=None) -> TrainResult:
    """Train a head (and, when fine-tuning, the backbone in place) on ``train_set``.

    Args:
        backbone: the backbone; fine-tuning changes ``backbone.module`` in place (and ``auto``
            restores the pretrained weights when it keeps the probe).
        train_set: the labeled training split.
        val_set: the labeled validation split; its items are scored, never trained on.
        classes: label names, in the head's output order.
        mode: ``probe``, ``finetune`` or ``auto`` (see the module's docstring).
        config: fine-tuning settings, resolved here once (default :class:`FinetuneConfig`).
        seed: seeds the probe's folds and everything fine-tuning draws.
        engine: where frozen forward passes run: ``auto``, ``onnx`` or ``torch``.
        cache_dir: where their features are cached (None: the default folder).
        depth_advisor: ``f(backbone, train, val, classes, seed) -> {"unfreeze", "sentence", ...}``,
            how many layer groups a staged fine-tune trains (default: the configuration's).
        refit: refit the chosen model on train+validation once every choice is made (see the module's
            docstring); False keeps what the strategy trained on the training split.
        keep_val_proba: also return the chosen model's validation probabilities before the refit
            (what the scratch comparison of ``auto`` weighs; one more pass over validation when tuned).
        pool: unlabeled items of the task: the chosen model's head learns from them too where that
            beats the labels alone (:func:`with_pool`; ``config["unlabeled"]`` says how it went).
        pool_method: ``auto``, ``none``, ``self-train`` or ``propagation`` (:mod:`.pool_training`).
        zero_shot_prior: for text with few labels, blend the probe with the names' zero-shot head (:mod:`.prior`).
        describe: short class descriptions for that head (``"a=...,b=..."`` or a mapping; default: the names).

    Returns:
        A :class:`TrainResult`.
    """
    check_mode(mode)
    seed_everything(seed)
    config = config or FinetuneConfig()
    splits = Splits(backbone, train_set, val_set, list(classes), seed, engine, cache_dir)
    if _goes_back_to_pretrained(mode, config, splits):
        splits.pretrained = copy.deepcopy(backbone.module.state_dict())
    splits.prior = class_name_prior(splits, pool, describe, wanted=zero_shot_prior)
    start = _probe(splits)
    record = {"mode": mode, "requested_mode": mode, **start.record}  # "mode" becomes the one kept

    def pooled(outcome: Outcome) -> Outcome:
        return outcome if pool is None else with_pool(splits, outcome, pool, pool_method, record["probe"]["C"],
                                                      refit=refit)

    # The probe learns from the pool before any fine-tune, while the backbone still has its pretrained weights.
    chosen = pooled(start) if mode != "finetune" else start
    if mode != "probe":
        resolved, tuning, chosen, teacher = _tuning_plan(splits, config, record, start, chosen,
                                                         pooled if pool is not None else None, pool, depth_advisor)
        probe = chosen
        tuned = FINETUNE_STRATEGIES[resolved.strategy](tuning, resolved, start)
        record.update(tuned.record)
        chosen = _student_or_teacher(pooled(tuned), teacher, splits, record)
        tuned = teacher if chosen is teacher else tuned
        record["validation"] = {"probe": start.val_accuracy, "finetuned": tuned.val_accuracy}
        if pool is not None:  # like with like: each model as it would ship, having learned from the pool
            record["validation"].update(probe_with_pool=validation_accuracy(probe, splits.val_y),
                                        finetuned_with_pool=validation_accuracy(chosen, splits.val_y))
        if mode == "auto" and auto_keeps_probe(record, splits.backbone.modality, len(splits.train),
                                               len(splits.val), len(splits.classes), pool=pool is not None):
            backbone.module.load_state_dict(splits.pretrained)
            record.update(start.record)
            chosen = probe
        record["mode"] = "finetune" if chosen.tuned else "probe"
    history = start.history + (tuned.history if mode != "probe" else [])
    if pool is not None:
        record["unlabeled"] = chosen.record["unlabeled"]
    head = chosen.head
    val_proba = None
    if keep_val_proba and len(val_set):  # before the refit, which trains on these items
        val_proba = chosen.val_proba if chosen.val_proba is not None else chosen.head.proba(
            splits.features(val_set, tuned=chosen.tuned))
    if refit and chosen.refit is not None:
        head = chosen.refit()
        record["refit"] = "train+validation"
    return TrainResult(head, chosen.tuned, history, record, val_proba)
