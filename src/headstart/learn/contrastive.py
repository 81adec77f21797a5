"""Contrastive few-shot tuning of a text encoder on sentence pairs, with a bounded pair budget.

With a handful of labels per class, a cross-entropy fine-tune has too little
signal, while pairs of items give many more training examples: the encoder
learns to put items of one class close together and items of different
classes apart (cosine similarity regressed to 1 or 0, as in SetFit,
Tunstall et al. 2022). The number of pairs is capped, so many classes or
many items never make the pair set explode; a probe is then fitted on the
tuned features.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from headstart.backbones.base import Backbone
from headstart.learn.config import FinetuneConfig
from headstart.progress import progress_bar


def sample_pairs(labels: np.ndarray, pairs_per_item: int, max_pairs: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced positive and negative pairs: (first, second, target) with target 1 for same class.

    Each item is paired ``pairs_per_item`` times (half with its class, half with others), at most
    ``max_pairs`` pairs in all.
    """
    n = len(labels)
    per_item = max(2, min(pairs_per_item, max_pairs // max(1, n)))
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    first, second, target = [], [], []
    for i in range(n):
        same, other = by_class[labels[i]], np.flatnonzero(labels != labels[i])
        same = same[same != i]
        for _ in range(per_item // 2):
            if len(same):
                first.append(i), second.append(rng.choice(same)), target.append(1.0)
            if len(other):
                first.append(i), second.append(rng.choice(other)), target.append(0.0)
    order = rng.permutation(len(first))[:max_pairs]
    return np.array(first)[order], np.array(second)[order], np.array(target, dtype=np.float32)[order]


def contrastive_tune(backbone: Backbone, items: list[str], labels: np.ndarray, config: FinetuneConfig, *,
                     seed: int = 0) -> list[dict]:
    """Tune ``backbone.module`` in place on pairs of ``items``.

    Args:
        backbone: a text backbone.
        items: the training texts; nothing else is seen.
        labels: their class ids (n,).
        config: a resolved :class:`FinetuneConfig` (``lr``, ``epochs``, ``batch_size``,
            ``pairs_per_item``, ``max_pairs``).
        seed: seeds the pairs and their order.

    Returns:
        One history row an epoch.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    lr, epochs, batch_size = config.lr, config.epochs, config.batch_size
    first, second, target = sample_pairs(labels, config.pairs_per_item, config.max_pairs, rng)
    module = backbone.module
    module.train()
    for parameter in module.parameters():
        parameter.requires_grad_(True)
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=0.01)
    steps = math.ceil(len(first) / batch_size) * epochs
    warmup = max(1, int(0.1 * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))
    history = []
    with progress_bar("contrastive tuning", steps) as advance:
        for epoch in range(epochs):
            started, losses = time.perf_counter(), []
            order = rng.permutation(len(first))
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                # Both sides of the batch in one forward pass: one padding, one graph.
                texts = [items[i] for i in first[batch]] + [items[i] for i in second[batch]]
                embeddings = module(**backbone.preprocess(texts))
                a, b = embeddings[:len(batch)], embeddings[len(batch):]
                similarity = nn.functional.cosine_similarity(a, b)
                loss = nn.functional.mse_loss(similarity, torch.from_numpy(target[batch]))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(loss.item())
                advance(1)
            history.append({"epoch": epoch + 1, "stage": "contrastive pairs", "train_loss": float(np.mean(losses)),
                            "pairs": int(len(first)), "seconds": time.perf_counter() - started})
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return history
