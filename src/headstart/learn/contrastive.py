"""Contrastive few-shot tuning of a text encoder on pairs of texts.

With a handful of labels per class, a cross-entropy fine-tune has too little signal, while pairs
of items give many more training examples: the encoder learns to put items of one class close
together and items of different classes apart (cosine similarity regressed to 1 or 0, as in SetFit,
Tunstall et al. 2022). A probe is then fitted on the tuned features.

Two pairings:

- ``in_batch`` (the default): each step encodes a batch of distinct texts once and scores every
  pair of them, so a batch of 16 texts gives 120 pairs for the price of 16 forward passes, where
  sampled pairs give 16 pairs for 32. Classmates enter a batch in small groups, so every batch
  holds same-class pairs (as P-K batches do, Hermans et al. 2017). A run is sized in steps
  (``min_steps``), whatever the number of texts.
- ``sampled``: SetFit's own scheme, ``pairs_per_item`` random pairs an item (half with its class),
  at most ``max_pairs``; each batch of pairs encodes each distinct text once.

Either way each text is tokenized once (:class:`headstart.learn.token_cache.TokenCache`). In-batch
tuning trains only the layer groups that ``unfreeze`` names (a text model's embeddings are not by
default: half of MiniLM's weights, whose optimizer step costs as much as a forward pass, and
training them changed nothing measurable); sampled pairs train the whole encoder. On 100 SST-2
texts, 3 seeds, 140 in-batch steps scored 79.2% in about 60 s of tuning, as 4,000 sampled
pairs (SetFit's scheme) did in 250 s (benchmarks/README.md, "Few-shot text fine-tuning speed").
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from headstart.backbones.base import Backbone
from headstart.learn.config import FinetuneConfig
from headstart.learn.token_cache import TokenCache
from headstart.progress import progress_bar

CLASSMATES_A_GROUP = 4  # texts of one class that enter an in-batch step together


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


def text_batches(labels: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One pass over the texts in batches of at most ``batch_size`` distinct texts.

    Each class's texts are shuffled and cut into groups of a few classmates; the groups are
    shuffled and packed into batches, so a batch holds same-class pairs whatever the number of
    classes. A batch is never a single text (it would hold no pair).
    """
    group = max(1, min(CLASSMATES_A_GROUP, batch_size // 2))
    groups = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        groups += [members[start:start + group] for start in range(0, len(members), group)]
    batches, current = [], []
    for g in rng.permutation(len(groups)):
        if current and sum(map(len, current)) + len(groups[g]) > batch_size:
            batches.append(np.concatenate(current))
            current = []
        current.append(groups[g])
    if current:
        last = np.concatenate(current)
        if len(last) < 2 and batches:
            batches[-1] = np.concatenate([batches[-1], last])
        else:
            batches.append(last)
    return batches


def in_batch_pair_loss(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the cosine similarity of every pair of distinct rows against 1 (same label) or 0.

    Same-class and other-class pairs weigh half each, as SetFit's balanced pairs do; a batch with
    only one kind scores that kind alone.
    """
    unit = nn.functional.normalize(embeddings, dim=1)
    similarity = unit @ unit.T
    upper = torch.ones_like(similarity, dtype=torch.bool).triu(diagonal=1)
    same = labels[:, None] == labels[None, :]
    parts = [((similarity[mask] - target) ** 2).mean() for mask, target in ((same & upper, 1.0), (~same & upper, 0.0))
             if mask.any()]
    return torch.stack(parts).mean() if parts else similarity.sum() * 0.0


def sampled_steps(labels: np.ndarray, config: FinetuneConfig, rng: np.random.Generator) -> list[list[tuple]]:
    """SetFit's pairs as steps: an epoch a list of (distinct texts, (first, second, target) positions in them)."""
    first, second, target = sample_pairs(labels, config.pairs_per_item, config.max_pairs, rng)
    epochs = []
    for _ in range(config.epochs):
        order, steps = rng.permutation(len(first)), []
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            texts, where = np.unique(np.concatenate([first[batch], second[batch]]), return_inverse=True)
            steps.append((texts, (where[:len(batch)], where[len(batch):], torch.from_numpy(target[batch]))))
        epochs.append(steps)
    return epochs


def step_loss(embeddings: torch.Tensor, pairs: tuple | None, labels: torch.Tensor) -> torch.Tensor:
    """The loss of one step: every pair of the batch (``pairs`` None), or the sampled pairs."""
    if pairs is None:
        return in_batch_pair_loss(embeddings, labels)
    first, second, target = pairs
    similarity = nn.functional.cosine_similarity(embeddings[first], embeddings[second])
    return nn.functional.mse_loss(similarity, target)


def trained_parameters(backbone: Backbone, unfreeze: int | None) -> list[nn.Parameter]:
    """The parameters of the top ``unfreeze`` layer groups (all of the module's for None); only they get gradients."""
    module = backbone.module
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    groups = backbone.layer_groups()
    chosen = [module] if unfreeze is None or not groups else groups[-unfreeze:]
    parameters = [p for group in chosen for p in group.parameters()]
    for parameter in parameters:
        parameter.requires_grad_(True)
    return parameters


def contrastive_tune(backbone: Backbone, items: list[str], labels: np.ndarray, config: FinetuneConfig, *,
                     seed: int = 0) -> list[dict]:
    """Tune ``backbone.module`` in place on pairs of ``items``.

    Args:
        backbone: a text backbone.
        items: the training texts; nothing else is seen.
        labels: their class ids (n,).
        config: a resolved :class:`FinetuneConfig` (``pairing``, ``lr``, ``epochs``, ``batch_size``,
            ``unfreeze``; ``pairs_per_item`` and ``max_pairs`` for sampled pairs).
        seed: seeds the pairs and their order.

    Returns:
        One history row an epoch.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    labels = np.asarray(labels)
    if config.pairing == "sampled":
        plan = sampled_steps(labels, config, rng)
    else:
        plan = [[(texts, None) for texts in text_batches(labels, config.batch_size, rng)]
                for _ in range(config.epochs)]
    tokens, label_ids = TokenCache(backbone, items), torch.from_numpy(labels)
    module = backbone.module
    module.train()
    parameters = trained_parameters(backbone, config.unfreeze if config.pairing == "in_batch" else None)
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    steps = sum(map(len, plan))
    warmup = max(1, int(0.1 * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))
    history = []
    with progress_bar("contrastive tuning", steps) as advance:
        for epoch, epoch_steps in enumerate(plan):
            started, losses = time.perf_counter(), []
            for texts, pairs in epoch_steps:
                loss = step_loss(module(**tokens.batch(texts)), pairs, label_ids[texts])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(loss.item())
                advance(1)
            history.append({"epoch": epoch + 1, "stage": f"contrastive pairs ({config.pairing})",
                            "train_loss": float(np.mean(losses)), "steps": len(epoch_steps),
                            "seconds": time.perf_counter() - started})
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return history
