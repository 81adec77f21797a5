"""The device headstart computes on, and the precision it trains and extracts in there.

``auto`` is CUDA where torch sees a GPU, the CPU otherwise. On a GPU, fine-tuning and frozen
forward passes run under autocast: bfloat16 where the GPU supports it (no loss scaling needed: its
exponent range is float32's), float16 with a gradient scaler otherwise (Micikevicius et al. 2018,
"Mixed Precision Training"). The CPU keeps float32 and the code path it always had: no autocast,
no scaler, no copies between devices.

The device reaches the places that compute (feature extraction, fine-tuning) through
:func:`using_device`, a context the public API and the commands open, rather than as an argument of
every function in between, in the way ``torch.autocast`` and ``torch.device`` contexts do. Outside
any, ``$HEADSTART_DEVICE`` decides (the labeling commands set it, so that the retraining threads and
processes they start inherit it), and without that everything runs on the CPU as before. torch is
imported inside the functions, so that the command line can check ``--device`` while it parses,
before torch loads.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from headstart.errors import HeadstartError

if TYPE_CHECKING:
    import torch

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
DEVICE_HELP = "auto (CUDA when torch sees a GPU, else the CPU), cpu, cuda or cuda:N"


def check_device(spec: str, where: str = "device") -> str:
    """``spec`` if it reads as a device (``auto``, ``cpu``, ``cuda``, ``cuda:N``), else a one-line error.

    Only the spelling is checked (no torch needed); :func:`resolve_device` checks the machine.
    """
    text = str(spec).strip().lower()
    if not DEVICE_PATTERN.fullmatch(text):
        raise HeadstartError(f"unknown device {spec!r}", where=where, fix=f"use {DEVICE_HELP}")
    return text


def resolve_device(spec: "str | torch.device | None" = "auto", where: str = "device") -> "torch.device":
    """The torch device ``spec`` names on this machine.

    ``auto`` is the GPU where torch sees one, else the CPU. A bare ``cuda`` in a process that a
    launcher started (``LOCAL_RANK`` set) is that process's own GPU.

    Raises:
        HeadstartError: the spelling is wrong, or CUDA is asked for and torch sees no GPU, or not that many.
    """
    import torch

    if isinstance(spec, torch.device):
        spec = str(spec)
    text = check_device(spec or "auto", where)  # None: auto
    if text == "cpu" or (text == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = "a CPU-only build of torch" if torch.version.cuda is None else "no GPU (or no driver)"
        raise HeadstartError(f"{text} was asked for, but torch sees {build}", where=where,
                             fix="use --device cpu (or auto), or run on a machine with a GPU and a CUDA build of torch")
    count = torch.cuda.device_count()
    index = int(text.partition(":")[2]) if ":" in text else int(os.environ.get("LOCAL_RANK", 0))
    if index >= count:
        raise HeadstartError(f"{text if ':' in text else f'cuda:{index}'} was asked for, but torch sees "
                             f"{count} GPU{'s' if count != 1 else ''}", where=where,
                             fix=f"use cuda:0 to cuda:{count - 1}, or auto")
    return torch.device("cuda", index)


@dataclass(frozen=True)
class Precision:
    """How a device computes: the autocast type (None: float32 as written) and whether losses are scaled.

    Attributes:
        name: ``fp32``, ``bf16`` or ``fp16``.
        scaled: float16 gradients underflow without a loss scaler; bfloat16's do not.
    """

    name: str
    scaled: bool = False

    @property
    def dtype(self) -> "torch.dtype | None":
        """The autocast type, or None for float32 without autocast."""
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def accelerate_name(self) -> str:
        """The same as Accelerate's ``mixed_precision`` (``no``, ``bf16``, ``fp16``)."""
        return "no" if self.name == "fp32" else self.name


FP32, BF16, FP16 = Precision("fp32"), Precision("bf16"), Precision("fp16", scaled=True)


def precision_for(device: "torch.device") -> Precision:
    """The precision policy: float32 on the CPU; on a GPU bfloat16 where supported, else float16, scaled."""
    import torch

    if device.type != "cuda":
        return FP32
    # Natively only: pre-Ampere GPUs (T4, V100) emulate bfloat16 slowly, and take float16 with a scaler.
    return BF16 if torch.cuda.is_bf16_supported(including_emulation=False) else FP16


def autocast(device: "torch.device") -> contextlib.AbstractContextManager:
    """Autocast to the device's precision; nothing at all on the CPU."""
    import torch

    dtype = precision_for(device).dtype
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


_current: ContextVar = ContextVar("headstart_device", default=None)


@contextlib.contextmanager
def using_device(spec: "str | torch.device | None" = "auto", where: str = "device") -> Iterator["torch.device"]:
    """Compute on ``spec`` (resolved, see :func:`resolve_device`) inside the block; yields the device.

    None keeps the device an enclosing block chose (the CPU where none did).
    """
    if spec is None:
        yield current_device()
        return
    token = _current.set(resolve_device(spec, where))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def on_device(function):
    """``function`` run inside :func:`using_device` of its own ``device`` argument (a public API function's)."""
    signature = inspect.signature(function)
    default = signature.parameters["device"].default

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with using_device(signature.bind(*args, **kwargs).arguments.get("device", default)):
            return function(*args, **kwargs)
    return wrapper


DEVICE_VARIABLE = "HEADSTART_DEVICE"


def current_device() -> "torch.device":
    """The device of the innermost :func:`using_device` block; outside any, ``$HEADSTART_DEVICE``'s, else the CPU."""
    import torch

    device = _current.get()
    if device is not None:
        return device
    spec = os.environ.get(DEVICE_VARIABLE)
    return resolve_device(spec, DEVICE_VARIABLE) if spec else torch.device("cpu")


def use_device_in_process(spec: str, where: str = "--device") -> str:
    """Compute on ``spec`` in this process, its threads and the processes it starts (``$HEADSTART_DEVICE``).

    A GPU that is not there is refused at once; ``auto`` is resolved where something computes, so
    that a command which finds everything cached never imports torch.
    """
    text = check_device(spec, where)
    if text.startswith("cuda"):
        resolve_device(text, where)
    os.environ[DEVICE_VARIABLE] = text
    return text


@contextlib.contextmanager
def placed(module: "torch.nn.Module", device: "torch.device") -> Iterator["torch.nn.Module"]:
    """``module`` moved to ``device`` for the block and back to the CPU after it; on the CPU, nothing moves.

    Models live on the CPU between uses, where saving, ONNX export and the rest of headstart expect
    them; a GPU pass pays two copies of the weights, small next to the pass itself.
    """
    if device.type == "cpu":
        yield module
        return
    module.to(device)
    try:
        yield module
    finally:
        module.to("cpu")


def to_device(inputs: dict, device: "torch.device") -> dict:
    """Preprocessed inputs (name -> tensor) on ``device``; the same dict on the CPU."""
    if device.type == "cpu":
        return inputs
    return {name: value.to(device, non_blocking=True) for name, value in inputs.items()}
