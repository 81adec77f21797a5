"""``headstart fit --processes N``: the same command in N processes, started by Accelerate's launcher.

It is ``accelerate launch --multi_gpu --num_processes N -m headstart fit ...`` called as a function
(``accelerate.commands.launch``), so the processes start as that command starts them (torchrun's
agent), a user's Accelerate config (``accelerate config``) applies, and training cannot tell the two
apart. ``--multi_gpu`` is Accelerate's name for torchrun's launcher: on a machine without GPUs the
processes train on CPUs over gloo (headstart asks Accelerate for the CPU where ``--device`` resolves
to it). Only ``--num_processes``, a free port and each process's share of the cores are set here.

What a launcher set for the processes it started is read here too (:func:`process_count`,
:func:`process_index`), without importing torch or Accelerate.
"""

from __future__ import annotations

import os
from typing import Sequence

from headstart.errors import HeadstartError

# The variables a launcher sets for the processes' count and each one's rank: torchrun (which
# `accelerate launch` runs), then MPI's (Accelerate's launcher for CPUs across machines uses mpirun).
_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_RANK_VARIABLES = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")


def _first_int(names: Sequence[str], default: int) -> int:
    return next((int(os.environ[name]) for name in names if os.environ.get(name, "").isdigit()), default)


def process_count(default: int = 1) -> int:
    """How many processes a launcher started for this run (``default`` where it set no count)."""
    return _first_int(_SIZE_VARIABLES, default)


def process_index() -> int:
    """This process's rank among them (0 without a launcher)."""
    return _first_int(_RANK_VARIABLES, 0)


def is_main_process() -> bool:
    """Whether this process is the one that writes files and prints results."""
    return process_index() == 0


def check_processes(processes: int, already: int = 1) -> int:
    """``processes`` if it is 1 or more and this process was not itself launched as one of several.

    Args:
        processes: how many processes to train in.
        already: how many a launcher started this one among (``WORLD_SIZE``).
    """
    if processes < 1:
        raise HeadstartError(f"{processes} processes cannot train", where="--processes",
                             fix="give 1 (this process alone) or more")
    if processes > 1 and already > 1:
        raise HeadstartError(f"this process is one of {already} a launcher started", where="--processes",
                             fix="leave --processes out under accelerate launch (its --num_processes decides)")
    return processes


def without_option(args: list[str], name: str) -> list[str]:
    """``args`` without the option ``name`` and its value (``--name V`` or ``--name=V``)."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(f"{name}="):
            kept.append(arg)
    return kept


def launch(processes: int, args: list[str]) -> int:
    """Run ``headstart <args>`` in ``processes`` processes through Accelerate.

    Returns:
        0, or the exit code of the first process that failed (each has printed its own error).
    """
    from accelerate.commands.launch import launch_command, launch_command_parser
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    # torchrun gives each process one thread unless told: a share of the cores (OMP_NUM_THREADS, where set, wins)
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, len(os.sched_getaffinity(0)) // processes))
    launch_args = launch_command_parser().parse_args(
        ["--multi_gpu", "--num_processes", str(processes), "--num_machines", "1", "--main_process_port", "0",
         "--num_cpu_threads_per_process", threads, "--mixed_precision", "no", "--dynamo_backend", "no",
         "--module", "headstart", *args])
    try:
        launch_command(launch_args)
    except ChildFailedError as error:  # each process has printed its own error
        return next((failure.exitcode for failure in error.failures.values() if failure.exitcode), 1)
    return 0
