"""Adaptation to an unlabeled target (``headstart fit --target``), and ``auto``, which chooses without its labels.

The methods: CORAL, AdaBN, label-prior correction and self-training.

One method a module (:mod:`~headstart.adapt.coral`, :mod:`~headstart.adapt.adabn`,
:mod:`~headstart.adapt.label_shift`, :mod:`~headstart.adapt.self_training`), the chooser in
:mod:`~headstart.adapt.choose`, the target's checks in :mod:`~headstart.adapt.target` and the
adaptation of a model in :mod:`~headstart.adapt.adapt_model`.
"""

from headstart.adapt.adapt_model import adapt_model
from headstart.adapt.target import CHOICES, read_target

__all__ = ["CHOICES", "adapt_model", "read_target"]
