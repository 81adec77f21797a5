"""Progress bars for long steps (rich), silenced with ``HEADSTART_QUIET=1`` or ``quiet=True``."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

_console = Console(stderr=True)


def quiet() -> bool:
    """Whether ``HEADSTART_QUIET`` is set (to anything but 0): then no bars and no status lines."""
    return os.environ.get("HEADSTART_QUIET", "") not in ("", "0")


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[callable]:
    """Yield ``advance(n)``; draws a bar on stderr unless quiet."""
    if quiet():
        yield lambda n=1: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=_console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


def say(message: str) -> None:
    """One status line on stderr, unless quiet."""
    if not quiet():
        _console.print(message, highlight=False)
