"""The one interface every backbone has, whatever its source."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np
import torch
from torch import nn


class Backbone(ABC):
    """A pretrained network that turns items into feature vectors.

    Attributes:
        name: the registry name it was created from (``"minilm-l6"``, ``"timm:resnet18"``).
        modality: ``"text"`` or ``"image"``.
        feature_dim: length of one feature vector.
        module: ``nn.Module`` mapping the tensors of :meth:`preprocess` (as keyword
            arguments, in :attr:`input_names` order) to features of shape (n, feature_dim).
        input_names: names of the module's inputs, in call order (also the ONNX input names).
        dynamic_axes: per input, which axes vary between batches (for ONNX export).
        source: where the weights came from (a path, a package, a hub id), for manifests.
        pretrained: False when the weights are a random initialization.
        augments: whether ``preprocess(train=True)`` draws a random augmentation from its seed.
    """

    name: str
    modality: str
    feature_dim: int
    module: nn.Module
    input_names: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]
    source: str
    pretrained: bool = True
    augments: bool = False

    @abstractmethod
    def preprocess(self, items: Sequence[str], *, train: bool = False,
                   seed: int | None = None) -> dict[str, torch.Tensor]:
        """Turn raw items (texts or image paths) into the module's input tensors.

        ``train=True`` applies the training-time augmentation (images only), drawn from ``seed``.
        """

    @abstractmethod
    def layer_groups(self) -> list[nn.Module]:
        """The module's parameters in groups for staged unfreezing, from the bottom (input) to the top."""

    def split(self, n_bottom_groups: int) -> tuple[nn.Module, nn.Module] | None:
        """The module cut in two, ``(bottom, top)``, so that a frozen bottom can run apart.

        ``top(hidden=bottom(**inputs))`` equals ``module(**inputs)``, and the bottom holds the lowest
        ``n_bottom_groups`` layer groups. The bottom takes the module's inputs, the top one tensor
        named ``hidden``. None (the default) where the backbone cannot be cut there; fine-tuning
        then runs the module whole.
        """
        return None

    @abstractmethod
    def settings(self) -> dict:
        """The preprocessing settings that change the features (image size, max length...)."""

    @property
    def num_params(self) -> int:
        """The module's parameter count."""
        return sum(p.numel() for p in self.module.parameters())

    def fingerprint(self) -> str:
        """A hash of the weights and preprocessing settings: the feature cache's key.

        Hashing the weights (not the name) means a re-initialized or fine-tuned
        backbone never reads another one's cached features or ONNX export. The hash is kept while
        no tensor has changed: every in-place change (an optimizer step, ``load_state_dict``) bumps
        the tensor's version counter, and a swapped tensor has another identity, so the stamp below
        sees both. Without it, a served model re-hashed its 90 MB of weights on every request
        (117 of a single text's 134 ms).
        """
        tensors = sorted(self.module.state_dict(keep_vars=True).items())
        stamp = (repr(sorted(self.settings().items())),
                 tuple((key, id(tensor), tensor.data_ptr(), tensor._version) for key, tensor in tensors))
        cached = getattr(self, "_fingerprint", None)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        digest = hashlib.sha256(f"{self.modality}|{sorted(self.settings().items())}".encode())
        for key, tensor in tensors:
            digest.update(key.encode())
            # The array's own bytes, not a copy (tobytes would double the memory traffic).
            digest.update(tensor.detach().contiguous().cpu().numpy().reshape(-1).view(np.uint8))
        self._fingerprint = (stamp, digest.hexdigest())
        return self._fingerprint[1]

    def describe(self) -> dict:
        """What a manifest or a ranking table needs to know about this backbone."""
        return {
            "name": self.name,
            "modality": self.modality,
            "source": self.source,
            "pretrained": self.pretrained,
            "feature_dim": self.feature_dim,
            "num_params": self.num_params,
            "num_layer_groups": len(self.layer_groups()),
            **self.settings(),
        }

    @torch.no_grad()
    def embed(self, items: Sequence[str]) -> torch.Tensor:
        """Features of ``items`` with eager PyTorch, shape (n, feature_dim): the reference for ONNX."""
        self.module.eval()
        inputs = self.preprocess(items)
        return self.module(**inputs)
