"""Training settings: every default of every strategy, resolved in one place from the data and the backbone.

A user sets what they care about in :class:`FinetuneConfig` and leaves the rest ``None``;
:meth:`FinetuneConfig.resolved` fills each ``None`` once, before training, and the resolved copy is
what the strategies read and what the model folder records. benchmarks/README.md holds the
measurements behind the defaults.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from headstart.errors import HeadstartError

if TYPE_CHECKING:  # the backbones load torch; settings are read where it is not needed (the labeling server)
    from headstart.backbones.base import Backbone

MODES = ("auto", "probe", "finetune")
STRATEGIES = ("auto", "staged", "contrastive")
PAIRINGS = ("in_batch", "sampled")
# In-batch steps a contrastive run aims at on the training split, and the fewest passes over its texts
# (the passes decide from about 40 texts; the final run on every label takes a quarter more steps).
# On SST-2, 3 seeds (benchmarks/README.md, "Few-shot text fine-tuning speed"): 20 passes (140 steps)
# on 100 texts scored 79.2%, as 4,000 sampled pairs (SetFit's scheme) did in four times the time; on
# 200 texts 20 passes scored 79.8%, 11 passes 78.2%.
CONTRASTIVE_STEPS = 60
CONTRASTIVE_PASSES = 20


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else a clear error naming the option."""
    if mode not in MODES:
        raise HeadstartError(f"unknown mode '{mode}'", where="--mode", fix=f"use one of {', '.join(MODES)}")
    return mode


@dataclass
class FinetuneConfig:
    """Settings of a fine-tune. None means: chosen from the data and the backbone by :meth:`resolved`.

    Attributes:
        strategy: ``staged`` (cross-entropy, layer groups unfrozen from the top), ``contrastive``
            (text: sentence pairs, then a probe on the tuned features) or ``auto``: contrastive for
            text with at most ``few_shot_per_class`` training items a class on average, staged otherwise.
        epochs: passes over the training split (None: enough for ``min_steps`` steps, staged 3 to 30,
            in-batch contrastive at least :data:`CONTRASTIVE_PASSES`, at most 100; sampled contrastive
            pairs, 1 pass over the pairs). Contrastive text tuned with pool pseudo-labels counts them over
            the labels alone (:func:`headstart.learn.pseudo_label_tuning.settings`).
        lr: peak learning rate of the head and the top layer group (None: contrastive 2e-5; staged
            1e-3 for images, and for text 1e-4 from ``large_text`` training items, 5e-5 below).
        layer_decay: each lower group learns at this factor of the rate of the group above.
        unfreeze: how many layer groups, from the top, are trained by the last stage (None: all but
            a text model's embeddings; the top half of an image model's groups, whose lower ones are
            generic edge and texture detectors and, with the largest feature maps, the costliest to train).
        unfreeze_fraction: the share of the training steps over which the groups are unfrozen
            one by one (0: all of them from the first step).
        batchnorm: ``frozen`` keeps the pretrained running statistics of batch-norm layers,
            ``adapt`` updates them from the training batches (None: adapt for images).
        batch_size: items a step (None: 16 for text, 32 for images).
        weight_decay, dropout (before the head), label_smoothing: as usual.
        class_weighted: weight the loss by inverse class frequency (for imbalanced data).
        patience: epochs of the schedule's second half scoring more than a standard error below
            the best validation accuracy, in a row, before stopping (None: a quarter of the
            epochs, at least 2).
        min_steps: training steps the default number of epochs aims at (None: 150 for text, whose
            pretrained features need little change; 1,650 for images, whose ones need more;
            :data:`CONTRASTIVE_STEPS` for in-batch contrastive tuning, whose steps score many pairs each).
        few_shot_per_class: training items a class up to which ``auto`` picks contrastive tuning.
        large_text: training items from which staged text fine-tuning takes the higher default rate.
        pairing: contrastive pairs, ``in_batch`` (the default: every pair of a batch of ``batch_size``
            distinct texts, the ``unfreeze`` groups trained) or ``sampled`` (SetFit's: ``pairs_per_item``
            random pairs an item, ``batch_size`` pairs a step, the whole encoder trained: the same
            accuracy on SST-2 for about 3.5x the work); see :mod:`headstart.learn.contrastive`.
        pairs_per_item, max_pairs: sampled pairing pairs each item this many times, at most
            ``max_pairs`` pairs in all, so many classes or items never make the pair set explode.
        held_out_pairs_per_item: pairs an item in the sampled contrastive run that is judged on validation
            before the final run on every label (None: a quarter of ``pairs_per_item``, at least 2):
            it only has to tell whether tuning beats the probe, and the final run trains anyway.
        held_out_epochs: the same for in-batch pairing: passes of the judged run (None: half of ``epochs``).
    """

    strategy: str = "auto"
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
    # SST-2, the labeling loop's labels with the pool (benchmarks/label_budget.py, 3 seeds): at 300 and 500
    # labels (about 117 and 195 training items a class) contrastive tuning scored 82.4 and 83.2%, staged
    # cross-entropy (what 100 a class picked there) 80.1 and 79.1%, one seed as low as 76.2 and 74.5%.
    few_shot_per_class: int = 250
    large_text: int = 2000
    pairs_per_item: int = 40
    max_pairs: int = 6000
    held_out_pairs_per_item: int | None = None
    pairing: str = "in_batch"
    held_out_epochs: int | None = None

    def resolved(self, backbone: Backbone, n_train: int, n_classes: int) -> "FinetuneConfig":
        """A copy with every None replaced by its data- and backbone-dependent default.

        Args:
            backbone: the backbone to be tuned (its modality and layer groups decide defaults).
            n_train: training items.
            n_classes: classes.

        Returns:
            The resolved copy; resolving it again changes nothing.
        """
        config = copy.copy(self)
        text = backbone.modality == "text"
        if config.strategy == "auto":
            few = text and n_train <= self.few_shot_per_class * max(1, n_classes)
            config.strategy = "contrastive" if few else "staged"
        if config.strategy not in STRATEGIES[1:]:
            raise HeadstartError(f"unknown fine-tuning strategy {config.strategy!r}", where="strategy",
                                 fix=f"use one of {', '.join(STRATEGIES)}")
        if config.strategy == "contrastive" and not text:
            raise HeadstartError("contrastive tuning is for text backbones", where="strategy",
                                 fix="use staged (or auto) for images")
        groups = len(backbone.layer_groups())
        if config.unfreeze is None:
            config.unfreeze = groups - 1 if text else math.ceil(groups / 2)
        config.unfreeze = max(1, min(config.unfreeze, groups))
        if config.batch_size is None:
            config.batch_size = 16 if text else 32
        if config.batchnorm is None:
            config.batchnorm = "frozen" if text else "adapt"
        if config.batchnorm not in ("frozen", "adapt"):
            raise HeadstartError(f"batchnorm must be frozen or adapt, not {config.batchnorm!r}", where="batchnorm")
        if config.pairing not in PAIRINGS:
            raise HeadstartError(f"unknown contrastive pairing {config.pairing!r}", where="pairing",
                                 fix=f"use one of {', '.join(PAIRINGS)}")
        in_batch = config.strategy == "contrastive" and config.pairing == "in_batch"
        if config.min_steps is None:
            config.min_steps = CONTRASTIVE_STEPS if in_batch else 150 if text else 1650
        if config.epochs is None and config.strategy == "contrastive" and not in_batch:
            config.epochs = 1
        if config.epochs is None:
            steps_per_epoch = max(1, math.ceil(n_train / config.batch_size))
            low, high = (1, 100) if in_batch else (3, 30)
            epochs = math.ceil(config.min_steps / steps_per_epoch)
            config.epochs = int(np.clip(max(epochs, CONTRASTIVE_PASSES) if in_batch else epochs, low, high))
        if config.lr is None:
            config.lr = (2e-5 if config.strategy == "contrastive" else 1e-3 if not text
                         else 1e-4 if n_train >= self.large_text else 5e-5)
        if config.patience is None:
            config.patience = max(2, math.ceil(config.epochs / 4))
        if config.held_out_pairs_per_item is None:
            config.held_out_pairs_per_item = max(2, config.pairs_per_item // 4)
        if config.held_out_epochs is None:
            config.held_out_epochs = max(1, config.epochs // 2)
        return config
