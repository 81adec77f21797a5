"""Training in one process, or data-parallel in several through Hugging Face Accelerate.

A launcher (``accelerate launch``, or ``headstart fit --processes N`` which calls the same) starts
the processes and sets ``WORLD_SIZE``; each runs the whole of ``headstart fit`` on the same split
(the same seed). Only fine-tuning's training steps are shared: every process computes the gradients
of its share of each batch, and Accelerate's wrapper (PyTorch's DistributedDataParallel) averages
them, so every process takes the same step and holds the same weights. The main process alone
writes the model folder and the report.

Without a launcher nothing here loads Accelerate: :class:`LocalEngine` is the one process's device,
autocast and (float16 only) gradient scaler, and on the CPU it is the plain PyTorch step it always was.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from headstart.compute.device import autocast, precision_for
from headstart.compute.launch import process_count

@contextlib.contextmanager
def main_process_first(device: torch.device) -> Iterator[None]:
    """The main process runs the block first, the others after it (what it cached, they read)."""
    if process_count() == 1:
        yield
        return
    from accelerate import PartialState

    with PartialState(cpu=device.type == "cpu").main_process_first():
        yield


def finish_processes() -> None:
    """End this process's part in a group of several (a no-op in one process)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class LocalEngine:
    """One process's training step: on ``device``, under its autocast, with a loss scaler for float16.

    Args:
        device: where the model trains.
    """

    processes, index = 1, 0

    def __init__(self, device: torch.device):
        self.device = device
        self.precision = precision_for(device)
        self.scaler = torch.amp.GradScaler(device.type) if self.precision.scaled else None

    def prepare(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[nn.Module, torch.optim.Optimizer]:
        """The module to call in training (here ``module`` itself) and the optimizer to step."""
        return module, optimizer

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward pass's precision (nothing on the CPU)."""
        return autocast(self.device)

    def backward(self, loss: torch.Tensor) -> None:
        """Gradients of ``loss`` (scaled first for float16)."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer, parameters, max_norm: float) -> None:
        """Clip the gradients' norm to ``max_norm``, then step (a scaled step skips on overflow)."""
        if self.scaler is None:
            nn.utils.clip_grad_norm_(parameters, max_norm)
            optimizer.step()
            return
        self.scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(parameters, max_norm)
        self.scaler.step(optimizer)
        self.scaler.update()

    def share(self, batches: list) -> list:
        """This process's part of each batch: all of it."""
        return batches

    def agree(self, value):
        """The main process's ``value``, the same in every process: here ``value``."""
        return value

    def sync_buffers(self, module: nn.Module) -> None:
        """Give every process the main one's buffers (batch-norm statistics): nothing to do here."""

    def finish(self) -> None:
        """Let go of what training held."""


class AcceleratedEngine(LocalEngine):
    """The training step of one of several processes, through ``accelerate.Accelerator``.

    Every process takes a strided share of each batch (batches are grouped by text length, so the
    shares are alike); ``accelerator.backward`` and the DistributedDataParallel wrapper average the
    gradients over the processes. The schedule counts the same steps as one process with the whole
    batch, so the two runs match but for the order of floating-point sums and for dropout.

    Args:
        device: the device kind to train on; each process gets its own (``cuda:LOCAL_RANK``).
    """

    def __init__(self, device: torch.device):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        # The unfrozen layer groups change between stages: parameters without gradients in a step
        # must not stall the gradient exchange.
        self.accelerator = Accelerator(cpu=device.type == "cpu",
                                       mixed_precision=precision_for(device).accelerate_name,
                                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        self.device, self.scaler = self.accelerator.device, None
        self.precision = precision_for(self.device)
        self.processes, self.index = self.accelerator.num_processes, self.accelerator.process_index

    def prepare(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[nn.Module, torch.optim.Optimizer]:
        """Accelerate's wrappers: DistributedDataParallel around ``module``, the optimizer's own."""
        # DistributedDataParallel registers only parameters that take gradients when it wraps:
        # all of them, so that each group's gradients are exchanged once its stage unfreezes it.
        module.requires_grad_(True)
        return self.accelerator.prepare(module, optimizer)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Accelerate's autocast, to the precision it was given."""
        return self.accelerator.autocast()

    def backward(self, loss: torch.Tensor) -> None:
        """Gradients of ``loss``, averaged over the processes (and scaled for float16) by Accelerate."""
        self.accelerator.backward(loss)

    def step(self, optimizer, parameters, max_norm: float) -> None:
        """Clip the averaged gradients' norm (unscaled first for float16), then step."""
        self.accelerator.clip_grad_norm_(parameters, max_norm)
        optimizer.step()

    def share(self, batches: list) -> list:
        """This process's strided share of each batch."""
        # A batch with fewer items than processes would leave one without any: left out, by all alike.
        return [batch[self.index::self.processes] for batch in batches if len(batch) >= self.processes]

    def agree(self, value):
        """The main process's ``value``, sent to every process."""
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]

    def sync_buffers(self, module: nn.Module) -> None:
        """Every process takes the main one's buffers (each updated its own from its share)."""
        for buffer in module.buffers():
            torch.distributed.broadcast(buffer.data, src=0)

    def finish(self) -> None:
        """Release the wrappers, so that the next fine-tune in this process prepares its own."""
        self.accelerator.free_memory()


def training_engine(device: torch.device) -> LocalEngine:
    """The engine for this process: Accelerate's where a launcher started several, the local one otherwise."""
    return AcceleratedEngine(device) if process_count() > 1 else LocalEngine(device)
