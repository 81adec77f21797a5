"""Staged fine-tuning: head first on frozen features, then layer groups unfrozen from the top.

The head starts from the linear probe fitted on cached features (linear
probing, then fine-tuning, keeps the pretrained features from being torn up
by a random head's first gradients). Layer groups are then unfrozen from the
top, one more at each stage; the stages fill the first ``unfreeze_fraction``
of the training steps, so the lower groups, which learn at geometrically
smaller rates, still get most of the steps. After every epoch the model is
scored on the validation split, and the weights kept at the end are chosen in
the schedule's second half only: there the learning rate has decayed below half
its peak. An epoch scored earlier, at a high learning rate, can top a 500-item
validation split by luck and test worse than the annealed weights (Fashion-MNIST,
seed 2: validation peaked at epoch 5 of 10, and its weights tested 1.9 points
below the other seeds').

Among the annealed epochs, a later one is kept unless an earlier one scored
better by more than the validation accuracy's standard error, and patience
counts only epochs that fall that far behind. On 500 items that error is about
one point, larger than the differences between annealed epochs, so the best
score alone picks noise and stops runs early: Fashion-MNIST, seed 3, validation
94.2% at epoch 7 of 12, then 93.0, 92.6 and 94.0%; patience stopped the run
there and kept epoch 7, 90.9% on the test images. With this rule the same run
trains all 12 epochs and keeps the last: 91.8%.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from headstart.backbones.base import Backbone
from headstart.data.dataset import Dataset
from headstart.features.extract import batches_in_length_order, prefetched
from headstart.learn.frozen_bottom import Bottom, frozen_bottom
from headstart.learn.probe import LinearHead
from headstart.progress import progress_bar


@dataclass
class FinetuneConfig:
    """Settings of a staged fine-tune. None means: chosen from the data and the backbone.

    Attributes:
        epochs: passes over the training split (None: enough for ``min_steps`` steps, 3 to 30).
        lr: learning rate of the head and the top layer group (None: 1e-3 for images; for text
            1e-4 from ``large_text`` training items, 5e-5 below. SST-2 with MiniLM-L6, test
            accuracy: on the 6,920 training sentences, seeds 0-2, 1e-4 gave 89.35 +- 0.29% where
            5e-5 gave 88.94 +- 0.08%; on 300 a class (468 training sentences), seeds 0-5, mode
            auto, 1e-4 gave 80.43% and 5e-5 81.23% on average (1e-4 worse on three seeds, equal on
            one, better on two). The threshold between the two sizes was not measured.)
        layer_decay: each lower group learns at this factor of the rate of the group above.
        unfreeze: how many layer groups, from the top, are trained by the last stage (None: all
            but a text model's embeddings; the top half of an image model's groups, since its lower
            ones are generic edge and texture detectors and, with the largest feature maps, the
            costliest to train: Fashion-MNIST, 4,500 images, 10 epochs, 91.8% in 325 s with the top
            3 of 6 groups, 91.8% in 386 s with 4, 91.3% in 437 s with all 6, one run each).
        unfreeze_fraction: the share of the training steps over which the groups are unfrozen
            one by one (0: all of them from the first step).
        batchnorm: ``frozen`` keeps the pretrained running statistics of batch-norm layers,
            ``adapt`` updates them from the training batches (None: adapt for images).
        batch_size, weight_decay, dropout (before the head), label_smoothing: as usual.
        class_weighted: weight the loss by inverse class frequency (for imbalanced data).
        patience: epochs of the schedule's second half scoring more than a standard error below
            the best validation accuracy, in a row, before stopping (None: a quarter of the
            epochs, at least 2).
        min_steps: training steps the default number of epochs aims at (None: 150 for text, whose
            pretrained features need little change; 1,650 for images, whose ones need more:
            on Fashion-MNIST's 4,500 training images, seeds 0-2, 12 epochs gave 91.7 +- 0.1% where
            10 gave 91.5 +- 0.3%).
        strategy: ``staged`` (cross-entropy, groups unfrozen from the top), ``contrastive`` (text:
            sentence pairs, then a probe) or ``auto``: contrastive for text with at most
            ``few_shot_per_class`` training items a class on average, staged otherwise.
        large_text: training items from which text fine-tunes at the higher default rate (see lr).
    """

    epochs: int | None = None
    lr: float | None = None
    layer_decay: float = 0.9
    unfreeze: int | None = None
    unfreeze_fraction: float = 0.3
    batchnorm: str | None = None
    batch_size: int | None = None
    weight_decay: float = 0.01
    dropout: float = 0.1
    label_smoothing: float = 0.1
    class_weighted: bool = True
    patience: int | None = None
    min_steps: int | None = None
    strategy: str = "auto"
    few_shot_per_class: int = 100
    large_text: int = 2000

    def resolved(self, backbone: Backbone, n_train: int, n_classes: int) -> "FinetuneConfig":
        """A copy with every None replaced by its data- and backbone-dependent default."""
        config = copy.copy(self)
        groups = len(backbone.layer_groups())
        if config.unfreeze is None:
            config.unfreeze = groups - 1 if backbone.modality == "text" else math.ceil(groups / 2)
        config.unfreeze = max(1, min(config.unfreeze, groups))
        if config.batch_size is None:
            config.batch_size = 16 if backbone.modality == "text" else 32
        if config.batchnorm is None:
            config.batchnorm = "adapt" if backbone.modality == "image" else "frozen"
        if config.batchnorm not in ("frozen", "adapt"):
            raise ValueError(f"batchnorm must be frozen or adapt, not {config.batchnorm!r}")
        if config.min_steps is None:
            config.min_steps = 150 if backbone.modality == "text" else 1650
        if config.epochs is None:
            steps_per_epoch = max(1, math.ceil(n_train / config.batch_size))
            config.epochs = int(np.clip(math.ceil(config.min_steps / steps_per_epoch), 3, 30))
        if config.lr is None:
            config.lr = 1e-3 if backbone.modality != "text" else 1e-4 if n_train >= self.large_text else 5e-5
        if config.strategy == "auto":
            few = backbone.modality == "text" and n_train <= self.few_shot_per_class * max(1, n_classes)
            config.strategy = "contrastive" if few else "staged"
        if config.strategy not in ("staged", "contrastive"):
            raise ValueError(f"strategy must be auto, staged or contrastive, not {config.strategy!r}")
        if config.patience is None:
            config.patience = max(2, math.ceil(config.epochs / 4))
        return config


class Classifier(nn.Module):
    """A backbone's feature module with dropout and a linear head: inputs -> logits (n, k)."""

    def __init__(self, features: nn.Module, feature_dim: int, n_classes: int, dropout: float = 0.0):
        super().__init__()
        self.features = features
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, n_classes)

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(**inputs)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def groups_unfrozen(step: int, total_steps: int, stages: int, fraction: float) -> int:
    """How many top layer groups train at ``step`` (0-based): one more at each of ``stages``
    equal stages spread over the first ``fraction`` of ``total_steps``, all of them after."""
    stage_steps = fraction * total_steps / stages
    if stage_steps < 1:
        return stages
    return min(stages, 1 + int(step // stage_steps))


def warmup_steps(total_steps: int) -> int:
    return max(1, int(0.06 * total_steps))


def rate_factor(step: int, total_steps: int) -> float:
    """The share of the peak learning rate at ``step`` (0-based): a linear warm-up over the first
    6% of the steps, then cosine decay to zero."""
    warmup = warmup_steps(total_steps)
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))


def first_annealed_epoch(epochs: int, steps_per_epoch: int) -> int:
    """The first epoch (1-based) whose last step ran at no more than half the peak learning rate:
    the first whose weights early stopping may keep (the last epoch always may)."""
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
    """Channels-last for images: oneDNN's depthwise and pointwise convolutions run about twice as
    fast on CPUs in that layout, forward and backward, for the same arithmetic."""
    return torch.channels_last if backbone.modality == "image" else torch.contiguous_format


def _laid_out(inputs: dict[str, torch.Tensor], memory_format: torch.memory_format) -> dict[str, torch.Tensor]:
    return {name: value.contiguous(memory_format=memory_format) if value.dim() == 4 else value
            for name, value in inputs.items()}


class _Split:
    """A classifier's backbone in two: the frozen ``bottom`` (a function, no gradients) and the
    trained ``top`` module (see learn/frozen_bottom.py). ``inputs`` runs the bottom on
    preprocessed inputs, in the prefetching thread; ``logits`` the rest."""

    def __init__(self, bottom: Bottom, top: nn.Module):
        self.bottom, self.top = bottom, top

    def inputs(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"hidden": self.bottom(inputs)}

    def logits(self, model: Classifier, hidden: torch.Tensor) -> torch.Tensor:
        return model.head(model.dropout(self.top(hidden=hidden)))


def _logits(model: Classifier, split: _Split | None, inputs: dict[str, torch.Tensor],
            memory_format: torch.memory_format) -> torch.Tensor:
    inputs = _laid_out(inputs, memory_format)
    return model(**inputs) if split is None else split.logits(model, **inputs)


@torch.no_grad()
def predict_logits(model: Classifier, backbone: Backbone, items: list[str], batch_size: int = 64,
                   split: _Split | None = None) -> np.ndarray:
    """Logits (n, k) of ``model`` on ``items``, in their order (through ``split`` where given)."""
    model.eval()
    memory_format = _memory_format(backbone)
    out = np.zeros((len(items), model.head.out_features), dtype=np.float32)
    batches = batches_in_length_order(items, backbone.modality, batch_size)
    prepare = backbone.preprocess if split is None else (lambda batch: split.inputs(backbone.preprocess(batch)))
    for batch, inputs in zip(batches, prefetched(prepare, items, batches)):
        out[batch] = _logits(model, split, inputs, memory_format).numpy()
    return out


def _set_trainable(model: nn.Module, groups: list[nn.Module], n_top: int, batchnorm: str) -> None:
    """Train the top ``n_top`` groups; batch-norm layers of frozen groups (all of them with
    ``batchnorm='frozen'``) keep their running statistics.

    Frozen statistics keep the features the probe-initialized head was fitted on; adapting
    them in the trained groups helps where the data look unlike the pretraining data (grey
    clothes are not ImageNet photographs).
    """
    model.train()
    for depth, group in enumerate(reversed(groups)):
        trained = depth < n_top
        for parameter in group.parameters():
            parameter.requires_grad_(trained)
        for module in group.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.train(trained and batchnorm == "adapt")
    for module in model.modules():
        if batchnorm == "frozen" and isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def finetune(backbone: Backbone, train: Dataset, val: Dataset, classes: list[str], head: LinearHead,
             config: FinetuneConfig, *, seed: int = 0, engine: str = "auto",
             cache_dir=None) -> tuple[Classifier, list[dict], FinetuneConfig]:
    """Fine-tune ``backbone`` with a head started from ``head``.

    The layer groups that never train run apart from the rest where the backbone can be cut
    there (``engine`` and ``cache_dir`` as for feature extraction: see learn/frozen_bottom.py).

    Returns the model with the weights of the kept epoch (see the module's docstring), the
    per-epoch history (``epoch, stage, groups_trained, train_loss, val_loss, val_accuracy, lr,
    annealed, frozen_bottom, seconds, kept``; ``annealed``: the epoch could be kept; ``kept``: it
    was; ``frozen_bottom``:
    where the frozen groups ran, ``onnx``, ``torch`` or None for not apart) and the resolved config.
    """
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    config = config.resolved(backbone, len(train), len(classes))
    model = Classifier(backbone.module, backbone.feature_dim, len(classes), config.dropout)
    memory_format = _memory_format(backbone)
    model.to(memory_format=memory_format)
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(head.weight))
        model.head.bias.copy_(torch.from_numpy(head.bias))
    groups = backbone.layer_groups()
    cut = frozen_bottom(backbone, len(groups) - config.unfreeze, engine=engine, cache_dir=cache_dir)
    split = _Split(*cut[:2]) if cut else None
    train_y = torch.from_numpy(train.label_ids(classes))
    val_y = val.label_ids(classes)
    class_weight = None
    if config.class_weighted:
        counts = np.bincount(train_y.numpy(), minlength=len(classes)).astype(np.float64)
        class_weight = torch.tensor(np.where(counts > 0, counts.sum() / (len(classes) * np.maximum(counts, 1)), 0.0),
                                    dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=class_weight, label_smoothing=config.label_smoothing)

    # One parameter group per layer group, all in the optimizer from the start; frozen ones get no
    # gradients, so AdamW leaves them alone until their stage comes.
    param_groups = [{"params": list(model.head.parameters()), "lr": config.lr, "base_lr": config.lr}]
    for depth, group in enumerate(reversed(groups)):
        rate = config.lr * config.layer_decay ** depth
        param_groups.append({"params": list(group.parameters()), "lr": rate, "base_lr": rate})
    optimizer = torch.optim.AdamW(param_groups, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train) / config.batch_size))
    total_steps = steps_per_epoch * config.epochs
    annealed_from = first_annealed_epoch(config.epochs, steps_per_epoch)

    best_accuracy, kept_epoch, kept_state, since_kept = -1.0, None, None, 0
    history, step = [], 0
    with progress_bar("fine-tuning", total_steps) as advance:
        for epoch in range(config.epochs):
            started = time.perf_counter()
            batches = _training_batches(train, config.batch_size, rng)
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
                wanted = groups_unfrozen(step, total_steps, config.unfreeze, config.unfreeze_fraction)
                if wanted != n_top:
                    n_top = wanted
                    _set_trainable(model, groups, n_top, config.batchnorm)
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * rate_factor(step, total_steps)
                loss = loss_fn(_logits(model, split, inputs, memory_format), train_y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                losses.append(loss.item())
                step += 1
                advance(1)
            val_logits = predict_logits(model, backbone, val.items, split=split)
            val_loss = float(nn.functional.cross_entropy(torch.from_numpy(val_logits), torch.from_numpy(val_y)))
            val_accuracy = float((val_logits.argmax(1) == val_y).mean())
            history.append({"epoch": epoch + 1, "stage": f"top {n_top}/{len(groups)} groups",
                            "groups_trained": n_top, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                            "val_accuracy": val_accuracy, "lr": config.lr * rate_factor(step - 1, total_steps),
                            "annealed": epoch + 1 >= annealed_from, "frozen_bottom": cut[2] if cut else None,
                            "seconds": time.perf_counter() - started})
            if not history[-1]["annealed"]:
                continue  # mid-schedule weights are not candidates (see the module's docstring)
            best_accuracy = max(best_accuracy, val_accuracy)
            if val_accuracy >= best_accuracy - standard_error(best_accuracy, len(val_y)):
                kept_epoch, since_kept = epoch + 1, 0
                kept_state = copy.deepcopy(model.state_dict())
            else:
                since_kept += 1
                if since_kept >= config.patience:
                    break
    for row in history:
        row["kept"] = row["epoch"] == kept_epoch
    model.load_state_dict(kept_state)
    model.to(memory_format=torch.contiguous_format)  # safetensors and ONNX export want plain layouts
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, history, config


def config_dict(config: FinetuneConfig) -> dict:
    return asdict(config)
