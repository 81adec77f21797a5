"""Self-training: the model learns from its own confident predictions on the target.

Class-balanced pseudo-labeling with a curriculum, as for an unlabeled pool: the pieces live in
:mod:`headstart.learn.pseudo_labels` (the labeling loop, below this layer, uses them too); here
the source items are the labeled ones and the target's the unlabeled ones.
"""

from __future__ import annotations

from headstart.learn.pseudo_labels import ROUNDS, FitHead, confident_items, self_trained

__all__ = ["ROUNDS", "FitHead", "confident_items", "self_trained"]
