"""AdaBN: batch-norm statistics re-estimated on the target (Li, Wang, Shi, Liu & Hou 2016).

"Revisiting batch normalization for practical domain adaptation": a network's weights carry what
it knows about classes, its batch-norm statistics what it knows about the domain. Replacing each
BN layer's running mean and variance by the target's, layer after layer in one pass, moves the
target's activations to where the source's were, with no label and no weight changed.

The adapted statistics are buffers of the backbone's module, so a model carrying them saves them
with its weights (:mod:`headstart.backbones.layouts`) and its feature cache key changes with them
(:meth:`headstart.backbones.base.Backbone.fingerprint`).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from headstart.backbones.base import Backbone
from headstart.progress import progress_bar

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def batch_norm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The module's batch-norm layers that keep running statistics."""
    return [layer for layer in module.modules()
            if isinstance(layer, _BATCH_NORMS) and layer.track_running_stats]


def has_batch_norm(backbone: Backbone) -> bool:
    """Whether AdaBN applies: the backbone has batch-norm layers with running statistics."""
    return bool(batch_norm_layers(backbone.module))


@torch.no_grad()
def adapt_batch_norm(backbone: Backbone, items: Sequence[str], *, batch_size: int = 64) -> int:
    """Replace every batch-norm layer's running statistics by those of ``items``, in place.

    The statistics are the cumulative average of the batches' (``momentum=None``), not an
    exponential one that would mostly remember the last batches; nothing else in the module changes (weights, biases and the
    other layers stay in eval mode: dropout and stochastic depth are off).

    Args:
        backbone: a backbone with batch norm (see :func:`has_batch_norm`).
        items: the target's texts or image paths, preprocessed as for prediction (no augmentation).
        batch_size: items a forward pass.

    Returns:
        How many batch-norm layers were re-estimated.
    """
    layers = batch_norm_layers(backbone.module)
    momenta = [layer.momentum for layer in layers]
    backbone.module.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average, not an exponential one
        layer.train()
    try:
        with progress_bar(f"batch-norm statistics of the target ({backbone.name})", len(items)) as advance:
            for start in range(0, len(items), batch_size):
                batch = list(items[start:start + batch_size])
                backbone.module(**backbone.preprocess(batch))
                advance(len(batch))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
            layer.eval()
    return len(layers)
