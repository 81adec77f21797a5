"""Which share of a job this process does: rank r of world size w.

A process learns its rank from an explicit ``--shard r/w`` (separate runs, on one machine or many,
started by hand or by a batch scheduler), or, when it was started by ``accelerate launch``, from
Hugging Face Accelerate's ``PartialState``, which reads what the launcher set (``RANK``,
``WORLD_SIZE``...) and gives the processes a barrier. Accelerate is imported only then: the
one-process path needs it neither installed nor configured.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from headstart.compute.device import current_device
from headstart.compute.launch import process_count
from headstart.errors import HeadstartError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
# Set by `accelerate launch` in every process it starts, with one process or many.
_LAUNCHED_BY_ACCELERATE = ("ACCELERATE_MIXED_PRECISION", "ACCELERATE_DYNAMO_BACKEND", "ACCELERATE_USE_CPU")


@dataclass(frozen=True)
class Rank:
    """This process's place among the processes sharing a job.

    Attributes:
        rank: 0 to ``world - 1``.
        world: how many processes share the job.
        local_world: how many of them run on this machine (they share its cores).
        source: where the rank came from: ``--shard``, ``accelerate`` or ``single``.
        state: Accelerate's ``PartialState`` when launched by it (for its barrier), else None.
    """

    rank: int = 0
    world: int = 1
    local_world: int = 1
    source: str = "single"
    state: Any = field(default=None, compare=False, repr=False)

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the one that writes what is written once."""
        return self.rank == 0

    def __str__(self) -> str:
        return f"{self.rank}/{self.world}"

    def wait_for_everyone(self) -> None:
        """Wait until every process of an Accelerate launch gets here; separate ``--shard`` runs do not wait."""
        if self.state is not None:
            self.state.wait_for_everyone()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block in rank 0 first, then in the others (an Accelerate launch; otherwise at once).

        What the block writes once (an ONNX export, say) is then there for the others to read.
        """
        if self.state is None:
            yield
            return
        with self.state.main_process_first():
            yield


def parse_shard(text: str, option: str = "--shard") -> Rank:
    """The rank in ``r/w`` (``0/4`` is the first of four shares).

    Raises:
        HeadstartError: ``text`` is not two whole numbers with ``0 <= r < w``, naming ``option``.
    """
    match = _SHARD.match(text)
    if not match:
        raise HeadstartError(f"cannot read '{text}'", where=option,
                             fix="write RANK/WORLD, e.g. 0/2 and 1/2 for two processes")
    rank, world = int(match.group(1)), int(match.group(2))
    if world < 1:
        raise HeadstartError(f"a world size of {world} in '{text}'", where=option,
                             fix="the world size is how many processes share the work: 1 or more")
    if rank >= world:
        raise HeadstartError(f"rank {rank} in '{text}' is not below the world size {world}", where=option,
                             fix=f"ranks go from 0 to {world - 1}")
    return Rank(rank, world, local_world=1, source="--shard")


def launched_by_accelerate(environ: dict | None = None) -> bool:
    """Whether ``accelerate launch`` started this process (it leaves its settings in the environment)."""
    environ = os.environ if environ is None else environ
    return any(name in environ for name in _LAUNCHED_BY_ACCELERATE)


def current_rank(shard: str | None = None) -> Rank:
    """This process's rank: from ``shard`` (``r/w``), else from Accelerate when it launched this process.

    Neither: the only one, 0/1.

    Raises:
        HeadstartError: ``shard`` cannot be read; or it is given inside a multi-process Accelerate
            launch, which assigns the ranks itself; or Accelerate launched this process and is not installed.
    """
    launched = launched_by_accelerate()
    if shard is not None:
        if launched and process_count() > 1:
            raise HeadstartError("--shard inside a multi-process `accelerate launch`", where="--shard",
                                 fix="leave --shard out: the launcher gives each process its rank")
        return parse_shard(shard)
    if not launched:
        return Rank()
    try:
        from accelerate import PartialState
    except ImportError:
        raise HeadstartError("started by `accelerate launch`, but accelerate is not importable",
                             fix="pip install accelerate") from None
    # Without cpu=True, Accelerate on a machine with no accelerator leaves every process alone
    # (DistributedType.NO) rather than joining them over gloo: each would then do all the work.
    # The device is the one --device chose (a GPU node told --device cpu joins over gloo too).
    state = PartialState(cpu=current_device().type == "cpu")
    launched_world = process_count(default=state.num_processes)
    if state.num_processes != launched_world:
        raise HeadstartError(f"accelerate launched {launched_world} processes, but this one sees "
                             f"{state.num_processes}", fix="check the accelerate config (accelerate env)")
    local = int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes))
    return Rank(state.process_index, state.num_processes, local_world=max(1, local), source="accelerate",
                state=state)
