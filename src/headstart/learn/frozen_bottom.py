"""The frozen bottom of a network being fine-tuned, run apart from the trained top.

Staged fine-tuning never trains the lowest layer groups, and their batch-norm layers keep their
running statistics, so for every batch the bottom is a fixed function: the same inference that
feature extraction runs. It is also where an image network spends most of its time (the depthwise
convolutions on the largest feature maps), and ONNX Runtime runs it several times faster than eager
PyTorch. So the bottom is exported once and runs in ONNX Runtime, checked against eager PyTorch
within 1e-4; only the top goes through autograd (benchmarks/README.md).

One difference from running the network whole: the bottom runs in inference mode, so its blocks
drop no connections (EfficientNet's stochastic depth acts in the trained blocks only).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from headstart.backbones.base import Backbone
from headstart.compute.device import autocast, to_device
from headstart.paths import default_cache_dir, mark_used
from headstart.features.extract import ENGINES, example_inputs, export_onnx, session_of

log = logging.getLogger(__name__)

Bottom = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def frozen_bottom(backbone: Backbone, n_groups: int, *, engine: str = "auto", cache_dir: str | Path | None = None,
                  device: torch.device | None = None) -> tuple[Bottom, nn.Module, str] | None:
    """The backbone cut where its lowest ``n_groups`` layer groups stay frozen, the bottom run apart.

    Args:
        backbone: the backbone to be fine-tuned.
        n_groups: how many of the lowest layer groups never train.
        engine: where the bottom runs: ``auto`` (ONNX Runtime, eager PyTorch where the export
            fails), ``onnx`` or ``torch``.
        cache_dir: where the bottom's ONNX export is kept (default: the feature cache's folder).
        device: where a PyTorch bottom runs (None: the CPU); off the CPU, under the device's autocast,
            its activations left there for the top.

    Returns:
        ``(bottom, top, engine)``: ``bottom(inputs)`` gives the hidden activations without
        gradients, ``top(hidden=...)`` the features, ``engine`` is where the bottom runs (``onnx``
        or ``torch``); None where the backbone cannot be cut there (it then trains whole).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    pieces = backbone.split(n_groups) if n_groups > 0 else None
    if pieces is None:
        return None
    bottom, top = pieces
    bottom.eval()
    if engine in ("auto", "onnx"):
        try:
            return _onnx_bottom(backbone, bottom, n_groups, cache_dir), top, "onnx"
        except Exception as error:  # noqa: BLE001 - a failed export only costs speed
            if engine == "onnx":
                raise
            log.warning("ONNX export of %s's frozen bottom failed (%s); using eager PyTorch", backbone.name, error)

    # A copy: training switches the network's modules between modes, from another thread than
    # this one runs in; the copy stays in inference mode, as the ONNX Runtime bottom is.
    frozen = copy.deepcopy(bottom).eval().requires_grad_(False)
    if device is not None and device.type != "cpu":
        frozen.to(device)

        @torch.no_grad()
        def run_on_device(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
            with autocast(device):
                return frozen(**to_device(inputs, device))
        return run_on_device, top, "torch"

    @torch.no_grad()
    def run_torch(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return frozen(**inputs)
    return run_torch, top, "torch"


def _onnx_bottom(backbone: Backbone, bottom: nn.Module, n_groups: int, cache_dir: str | Path | None) -> Bottom:
    # Keyed by the weights as they are before training: the bottom never changes after that.
    path = Path(cache_dir or default_cache_dir()) / "onnx" / f"{backbone.fingerprint()[:24]}-bottom{n_groups}.onnx"
    if not path.exists():
        export_onnx(backbone, path, module=bottom, output_name="hidden")
    else:
        mark_used(path)
    # The bottom runs in the thread that prepares the next batch, beside the top's training step:
    # half the cores, threads that sleep when idle, so they leave the training step its cores
    # (the fastest of the arrangements timed: benchmarks/README.md).
    session = session_of(str(path), max(1, torch.get_num_threads() // 2), spinning=False)

    def run(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {name: value.numpy() for name, value in inputs.items()})[0])

    example = example_inputs(backbone)
    with torch.no_grad():
        expected = bottom(**example).numpy()
    difference = float(np.abs(run(example).numpy() - expected).max())
    if difference > 1e-4 * max(1.0, float(np.abs(expected).max())):
        raise RuntimeError(f"ONNX Runtime's bottom differs from eager PyTorch by {difference:.2g}")
    return run
