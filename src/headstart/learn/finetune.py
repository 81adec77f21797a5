"""Staged fine-tuning: head first on frozen features, then layer groups unfrozen from the top.

The head starts from the linear probe fitted on cached features (linear
probing, then fine-tuning, keeps the pretrained features from being torn up
by a random head's first gradients). Layer groups are then unfrozen from the
top, one more at each stage; the stages fill the first ``unfreeze_fraction``
of the training steps, so the lower groups, which learn at geometrically
smaller rates, still get most of the steps. After every epoch the model is
scored on the validation split, and the weights kept at the end are chosen in
the schedule's second half only, where the learning rate has decayed below half
its peak: an epoch scored earlier, at a high learning rate, can top a small
validation split by luck and test worse than the annealed weights
(benchmarks/README.md).

Among the annealed epochs, a later one is kept unless an earlier one scored
better by more than the validation accuracy's standard error, and patience
counts only epochs that fall that far behind. On a few hundred items that error
is one to two points, larger than the differences between annealed epochs, so
the best score alone picks noise and stops runs early (benchmarks/README.md).
"""

from __future__ import annotations

import copy
import math
import random
import time

import numpy as np
import torch
from torch import nn

from headstart.backbones.base import Backbone
from headstart.compute.device import autocast, current_device, to_device
from headstart.compute.processes import LocalEngine, training_engine
from headstart.data.dataset import Dataset
from headstart.features.extract import batches_in_length_order, prefetched
from headstart.learn.config import FinetuneConfig
from headstart.learn.frozen_bottom import Bottom, frozen_bottom
from headstart.learn.head import LinearHead
from headstart.progress import progress_bar


class Classifier(nn.Module):
    """A backbone's feature module with dropout and a linear head: inputs -> logits (n, k)."""

    def __init__(self, features: nn.Module, feature_dim: int, n_classes: int, dropout: float = 0.0):
        super().__init__()
        self.features = features
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, n_classes)

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Logits (n, k) of the inputs that ``backbone.preprocess`` gives, as keyword arguments."""
        return self.head(self.dropout(self.features(**inputs)))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global generators, which dropout and library code draw from."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def groups_unfrozen(step: int, total_steps: int, stages: int, fraction: float) -> int:
    """How many top layer groups train at ``step`` (0-based).

    One more at each of ``stages`` equal stages spread over the first ``fraction`` of
    ``total_steps``, all of them after.
    """
    stage_steps = fraction * total_steps / stages
    if stage_steps < 1:
        return stages
    return min(stages, 1 + int(step // stage_steps))


def warmup_steps(total_steps: int) -> int:
    """Steps of the learning rate's linear warm-up: 6% of ``total_steps``, at least one."""
    return max(1, int(0.06 * total_steps))


def rate_factor(step: int, total_steps: int) -> float:
    """The share of the peak learning rate at ``step`` (0-based).

    A linear warm-up over the first 6% of the steps (:func:`warmup_steps`), then cosine decay to zero.
    """
    warmup = warmup_steps(total_steps)
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))


def first_annealed_epoch(epochs: int, steps_per_epoch: int) -> int:
    """The first epoch (1-based) whose last step ran at no more than half the peak learning rate.

    It is the first whose weights early stopping may keep (the last epoch always may).
    """
    total_steps = epochs * steps_per_epoch

    def decayed(last_step: int) -> bool:  # past the warm-up and at half the peak or less (cos(pi/2) > 0 in floats)
        return last_step >= warmup_steps(total_steps) and rate_factor(last_step, total_steps) <= 0.5 + 1e-9

    return next((epoch for epoch in range(1, epochs) if decayed(epoch * steps_per_epoch - 1)), epochs)


def standard_error(accuracy: float, n: int) -> float:
    """The binomial standard error of an accuracy measured on ``n`` items (infinite for none)."""
    return math.sqrt(accuracy * (1 - accuracy) / n) if n else math.inf


def _training_batches(dataset: Dataset, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches; texts are grouped with texts of similar length so padding stays small."""
    order = rng.permutation(len(dataset))
    if dataset.modality != "text":
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    batches = []
    pool = batch_size * 50  # sort within pools of 50 batches: short padding, still random batches
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort([len(dataset.items[i]) for i in chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _memory_format(backbone: Backbone) -> torch.memory_format:
    """The memory format a backbone trains in: channels-last for images, contiguous otherwise.

    oneDNN's depthwise and pointwise convolutions run faster on CPUs in the channels-last layout,
    forward and backward, for the same arithmetic (benchmarks/README.md).
    """
    return torch.channels_last if backbone.modality == "image" else torch.contiguous_format


def _laid_out(inputs: dict[str, torch.Tensor], memory_format: torch.memory_format) -> dict[str, torch.Tensor]:
    return {name: value.contiguous(memory_format=memory_format) if value.dim() == 4 else value
            for name, value in inputs.items()}


class _Split:
    """A classifier's backbone in two: the frozen ``bottom`` and the trained ``top``.

    The bottom is a function without gradients, the top a module (see learn/frozen_bottom.py).
    ``inputs`` runs the bottom on preprocessed inputs, in the prefetching thread; ``logits`` the rest.
    """

    def __init__(self, bottom: Bottom, top: nn.Module):
        self.bottom, self.top = bottom, top

    def inputs(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"hidden": self.bottom(inputs)}

    def logits(self, model: Classifier, hidden: torch.Tensor) -> torch.Tensor:
        return model.head(model.dropout(self.top(hidden=hidden)))


class _Trained(nn.Module):
    """What a training step calls: the classifier whole, or its top over the frozen bottom's activations.

    One module either way, so that a data-parallel wrapper sees every forward pass it must synchronise.
    """

    def __init__(self, model: Classifier, split: _Split | None):
        super().__init__()
        self.model, self.top = model, None if split is None else split.top

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Logits (n, k) of preprocessed inputs, or of the bottom's ``hidden`` activations."""
        if self.top is None:
            return self.model(**inputs)
        return self.model.head(self.model.dropout(self.top(**inputs)))


def _logits(model: Classifier, split: _Split | None, inputs: dict[str, torch.Tensor],
            memory_format: torch.memory_format) -> torch.Tensor:
    inputs = _laid_out(inputs, memory_format)
    return model(**inputs) if split is None else split.logits(model, **inputs)


@torch.no_grad()
def predict_logits(model: Classifier, backbone: Backbone, items: list[str], batch_size: int = 64,
                   split: _Split | None = None, device: torch.device | None = None) -> np.ndarray:
    """Logits (n, k) of ``model`` on ``items``, in their order (through ``split`` where given).

    ``device`` is where ``model`` is (None: the CPU); off the CPU it runs under the device's autocast.
    """
    model.eval()
    memory_format = _memory_format(backbone)
    out = np.zeros((len(items), model.head.out_features), dtype=np.float32)
    batches = batches_in_length_order(items, backbone.modality, batch_size)
    prepare = backbone.preprocess if split is None else (lambda batch: split.inputs(backbone.preprocess(batch)))
    if device is None or device.type == "cpu":
        for batch, inputs in zip(batches, prefetched(prepare, items, batches)):
            out[batch] = _logits(model, split, inputs, memory_format).numpy()
        return out
    with autocast(device):
        for batch, inputs in zip(batches, prefetched(prepare, items, batches)):
            out[batch] = _logits(model, split, to_device(inputs, device), memory_format).float().cpu().numpy()
    return out


# How fast adapting batch-norm statistics follow the tuned layers: PyTorch's default, a window of about
# ten steps. EfficientNet-Lite's weights come with TensorFlow's 0.01, made for long ImageNet runs: after
# a 150-step fine-tune the statistics were still a fifth ImageNet's, while training had normalized with
# the batches' own, and the tuned model scored 67% and 46% on Fashion-MNIST at 200 labels against the
# probe's 81-82% it started from (80% with 0.1; benchmarks/README.md).
ADAPT_MOMENTUM = 0.1


def _set_trainable(model: nn.Module, groups: list[nn.Module], n_top: int, batchnorm: str) -> None:
    """Train the top ``n_top`` groups and freeze the others.

    Batch-norm layers of frozen groups (all of them with ``batchnorm='frozen'``) keep their
    running statistics. Frozen statistics keep the features the probe-initialized head was fitted on; adapting
    them in the trained groups helps where the data look unlike the pretraining data (grey
    clothes are not ImageNet photographs), and they then follow at ``ADAPT_MOMENTUM`` at least.
    """
    model.train()
    for depth, group in enumerate(reversed(groups)):
        trained = depth < n_top
        for parameter in group.parameters():
            parameter.requires_grad_(trained)
        for module in group.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                adapting = trained and batchnorm == "adapt"
                module.train(adapting)
                if adapting and module.momentum is not None:  # None: a cumulative average, already exact
                    module.momentum = max(module.momentum, ADAPT_MOMENTUM)
    for module in model.modules():
        if batchnorm == "frozen" and isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


class _KeptWeights:
    """Early stopping's choice of weights, and whether patience has run out.

    Among annealed epochs it keeps the latest within a standard error of the best validation
    accuracy (see the module's docstring).
    """

    def __init__(self, n_val: int, patience: int):
        self.n_val, self.patience = n_val, patience
        self.best, self.epoch, self.state, self.behind = -1.0, None, None, 0

    def offer(self, epoch: int, accuracy: float, model: nn.Module) -> bool:
        """Consider the weights after ``epoch``; returns whether training should stop."""
        self.best = max(self.best, accuracy)
        if accuracy >= self.best - standard_error(self.best, self.n_val):
            self.epoch, self.behind = epoch, 0
            self.state = copy.deepcopy(model.state_dict())
            return False
        self.behind += 1
        return self.behind >= self.patience


class _Run:
    """What one fine-tune trains with.

    The classifier, the frozen bottom's split, the optimizer with one parameter group per layer
    group, the loss and the step schedule.
    """

    def __init__(self, backbone: Backbone, train: Dataset, classes: list[str], head: LinearHead,
                 config: FinetuneConfig, engine: str, cache_dir, compute: LocalEngine):
        self.backbone, self.config, self.compute = backbone, config, compute
        device = self.device = compute.device
        self.model = Classifier(backbone.module, backbone.feature_dim, len(classes), config.dropout)
        self.memory_format = _memory_format(backbone)
        self.model.to(memory_format=self.memory_format)
        with torch.no_grad():
            self.model.head.weight.copy_(torch.from_numpy(head.weight))
            self.model.head.bias.copy_(torch.from_numpy(head.bias))
        if device.type != "cpu":
            self.model.to(device)
        self.groups = backbone.layer_groups()
        # Off the CPU the frozen bottom runs beside the top, in PyTorch on the same device.
        self.cut = frozen_bottom(backbone, len(self.groups) - config.unfreeze, cache_dir=cache_dir,
                                 engine=engine if device.type == "cpu" else "torch", device=device)
        self.split = _Split(*self.cut[:2]) if self.cut else None
        self.train_y = torch.from_numpy(train.label_ids(classes))
        class_weight = None
        if config.class_weighted:
            counts = np.bincount(self.train_y.numpy(), minlength=len(classes)).astype(np.float64)
            class_weight = torch.tensor(np.where(counts > 0, counts.sum() / (len(classes) * np.maximum(counts, 1)),
                                                 0.0), dtype=torch.float32, device=device)
        self.loss_fn = nn.CrossEntropyLoss(weight=class_weight, label_smoothing=config.label_smoothing)
        # One parameter group per layer group, all in the optimizer from the start; frozen ones get no
        # gradients, so AdamW leaves them alone until their stage comes.
        param_groups = [{"params": list(self.model.head.parameters()), "lr": config.lr, "base_lr": config.lr}]
        for depth, group in enumerate(reversed(self.groups)):
            rate = config.lr * config.layer_decay ** depth
            param_groups.append({"params": list(group.parameters()), "lr": rate, "base_lr": rate})
        optimizer = torch.optim.AdamW(param_groups, weight_decay=config.weight_decay)
        # With several processes, the module a step calls and the optimizer are Accelerate's wrappers.
        self.trained, self.optimizer = compute.prepare(_Trained(self.model, self.split), optimizer)
        self.steps_per_epoch = max(1, math.ceil(len(train) / config.batch_size))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.step = 0

    def train_epoch(self, train: Dataset, rng: np.random.Generator, advance) -> tuple[list[float], int]:
        """One pass over ``train``; returns the batch losses and how many top groups trained last."""
        backbone, config, split, compute, device = self.backbone, self.config, self.split, self.compute, self.device
        batches = compute.share(_training_batches(train, config.batch_size, rng))  # this process's part of each
        losses, n_top = [], 0  # 0: set the trainable groups afresh (validation left the model in eval mode)
        # One augmentation seed a batch, drawn here: the batches are prepared in order, in one
        # thread, so a run's augmentations depend on its seed only. A backbone that does not
        # augment (text) draws none, which keeps its shuffles on the stream they had before.
        batch_seeds = iter(rng.integers(2**31, size=len(batches)).tolist() if backbone.augments
                           else [None] * len(batches))

        def prepare(items: list[str]) -> dict[str, torch.Tensor]:
            inputs = backbone.preprocess(items, train=True, seed=next(batch_seeds))
            return inputs if split is None else split.inputs(inputs)

        for batch, inputs in zip(batches, prefetched(prepare, train.items, batches)):
            wanted = groups_unfrozen(self.step, self.total_steps, config.unfreeze, config.unfreeze_fraction)
            if wanted != n_top:
                n_top = wanted
                _set_trainable(self.model, self.groups, n_top, config.batchnorm)
            for group in self.optimizer.param_groups:
                group["lr"] = group["base_lr"] * rate_factor(self.step, self.total_steps)
            with compute.autocast():
                logits = self.trained(**_laid_out(to_device(inputs, device), self.memory_format))
                loss = self.loss_fn(logits, self.train_y[batch].to(device))
            self.optimizer.zero_grad(set_to_none=True)
            compute.backward(loss)
            compute.step(self.optimizer, self.model.parameters(), 1.0)
            losses.append(loss.item())
            self.step += 1
            advance(1)
        return losses, n_top

    def score(self, val: Dataset, val_y: np.ndarray) -> tuple[float, float]:
        """(validation loss, validation accuracy) of the current weights."""
        self.compute.sync_buffers(self.model)  # batch-norm statistics: the main process's, in every one
        logits = predict_logits(self.model, self.backbone, val.items, split=self.split, device=self.device)
        loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(val_y)))
        # Every process decides on early stopping from the same numbers, the main process's.
        return self.compute.agree((loss, float((logits.argmax(1) == val_y).mean())))


def finetune(backbone: Backbone, train: Dataset, val: Dataset, classes: list[str], head: LinearHead,
             config: FinetuneConfig, *, seed: int = 0, engine: str = "auto",
             cache_dir=None) -> tuple[Classifier, list[dict]]:
    """Fine-tune ``backbone.module`` in place with a head started from ``head``.

    The layer groups that never train run apart from the rest where the backbone can be cut
    there (``engine`` and ``cache_dir`` as for feature extraction: see learn/frozen_bottom.py).
    Validation items are only scored, never trained on. It trains on the device of the enclosing
    :func:`headstart.compute.device.using_device` (the CPU outside one), data-parallel where a
    launcher started several processes (:mod:`headstart.compute.processes`).

    Args:
        backbone: the backbone to tune; ``backbone.module`` changes in place.
        train: the labeled training split.
        val: the labeled validation split, scored after every epoch.
        classes: label names, in the head's output order.
        head: the starting head (the probe's).
        config: a resolved :class:`FinetuneConfig` (:meth:`FinetuneConfig.resolved`).
        seed: seeds shuffles, augmentation and dropout.
        engine: where the frozen bottom runs: ``auto``, ``onnx`` or ``torch``.
        cache_dir: where the frozen bottom's ONNX export is kept (default: the feature cache's folder).

    Returns:
        (model, history): the classifier (``backbone.module``, dropout, a linear ``head``) with the
        kept epoch's weights, frozen and in eval mode;
        one history row an epoch (``epoch, stage, groups_trained, train_loss, val_loss,
        val_accuracy, lr, annealed, frozen_bottom, seconds, kept``; ``annealed``: the epoch could be
        kept; ``kept``: it was; ``frozen_bottom``: where the frozen groups ran, ``onnx``, ``torch``
        or None for not apart).
    """
    unresolved = [name for name, value in vars(config).items() if value is None]
    if unresolved:  # a programming error, not a user's: the trainer resolves once, before any strategy runs
        raise ValueError(f"finetune needs a resolved FinetuneConfig; {', '.join(unresolved)} left None")
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    compute = training_engine(current_device())
    # _set_trainable raises adapting layers' momentum for the run; the module leaves as it came
    momenta = {module: module.momentum for module in backbone.module.modules()
               if isinstance(module, nn.modules.batchnorm._BatchNorm)}
    run = _Run(backbone, train, classes, head, config, engine, cache_dir, compute)
    val_y = val.label_ids(classes)
    annealed_from = first_annealed_epoch(config.epochs, run.steps_per_epoch)
    kept, history = _KeptWeights(len(val_y), config.patience), []
    with progress_bar("fine-tuning", run.total_steps) as advance:
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            losses, n_top = run.train_epoch(train, rng, advance)
            val_loss, val_accuracy = run.score(val, val_y)
            history.append({"epoch": epoch, "stage": f"top {n_top}/{len(run.groups)} groups",
                            "groups_trained": n_top, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                            "val_accuracy": val_accuracy, "lr": config.lr * rate_factor(run.step - 1, run.total_steps),
                            "annealed": epoch >= annealed_from, "frozen_bottom": run.cut[2] if run.cut else None,
                            "seconds": time.perf_counter() - started})
            # Mid-schedule weights are not candidates (see the module's docstring).
            if history[-1]["annealed"] and kept.offer(epoch, val_accuracy, run.model):
                break
    for row in history:
        row["kept"] = row["epoch"] == kept.epoch
    compute.finish()
    model = run.model
    model.load_state_dict(kept.state)
    model.to(memory_format=torch.contiguous_format)  # safetensors and ONNX export want plain layouts
    if run.device.type != "cpu":
        model.to("cpu")  # where the rest of headstart expects the model
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, history
