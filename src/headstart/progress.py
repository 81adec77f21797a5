"""Progress of long steps on stderr, silenced with ``HEADSTART_QUIET=1`` (``headstart -q``).

On a terminal a step draws a bar (rich), once it has run for :data:`BAR_DELAY` seconds: work that
ends sooner draws nothing, so a quick call of the Python API stays quiet. Where stderr is not a
terminal (a log file, CI) a bar would write nothing readable, so a step writes one line every
:data:`LINE_INTERVAL` seconds instead, with the step, the rate and the time left, and a last line
when it ends. Status lines (:func:`say`) are never wrapped: a log keeps each sentence on one line.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console

_console = Console(stderr=True)
BAR_DELAY = 1.0  # seconds of work before a bar is drawn
LINE_INTERVAL = 10.0  # seconds between progress lines where stderr is not a terminal


def _clock() -> float:
    """Seconds, monotonic; tests replace it with a fake clock."""
    return time.monotonic()


def quiet() -> bool:
    """Whether ``HEADSTART_QUIET`` is set (to anything but 0): then no bars and no status lines."""
    return os.environ.get("HEADSTART_QUIET", "") not in ("", "0")


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1)`` for a step of ``total`` units.

    It draws a bar on a terminal after :data:`BAR_DELAY` seconds, writes a line every
    :data:`LINE_INTERVAL` seconds elsewhere, and nothing when quiet.
    """
    if quiet():
        yield lambda n=1: None
        return
    shown = _DelayedBar(description, total) if _console.is_terminal else ProgressLines(description, total)
    try:
        yield shown.advance
    finally:
        shown.close()


def say(message: str) -> None:
    """One status line on stderr, unless quiet; never wrapped."""
    if not quiet():
        _console.print(message, highlight=False, soft_wrap=True)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class ProgressLines:
    """A step's progress as plain lines: ``fine-tuning: 120/600 (20%), 2.1/s, 57 s elapsed, about 3 min 48 s left``.

    Args:
        description: the step.
        total: how many units the step has.
        write: where a line goes (default: stderr, unwrapped).
        interval: seconds between lines.
    """

    def __init__(self, description: str, total: int, *, write: Callable[[str], None] | None = None,
                 interval: float | None = None):
        self.description, self.total, self.done = description, total, 0
        self.write = write or (lambda line: _console.print(line, highlight=False, markup=False, soft_wrap=True))
        self.interval = LINE_INTERVAL if interval is None else interval
        self.start = self.last = _clock()
        self.lines = 0

    def line(self, now: float) -> str:
        """The progress line at time ``now``."""
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        speed = f"{rate:.1f}/s" if rate >= 1 else f"{1 / rate:.1f} s each" if rate > 0 else "no step done yet"
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        left = f", about {_duration((self.total - self.done) / rate)} left" if rate > 0 and self.done < self.total \
            else ""
        return f"{self.description}: {self.done}/{self.total}{share}, {speed}, {_duration(elapsed)} elapsed{left}"

    def advance(self, n: int = 1) -> None:
        """Count ``n`` units done; write a line when :attr:`interval` seconds passed since the last."""
        self.done += n
        now = _clock()
        if now - self.last >= self.interval:
            self.last = now
            self.lines += 1
            self.write(self.line(now))

    def close(self) -> None:
        """A last line, where the step wrote any (a step shorter than the interval writes none)."""
        if self.lines:
            self.write(self.line(_clock()))


class _DelayedBar:
    """A rich bar that appears once the step has run :data:`BAR_DELAY` seconds."""

    def __init__(self, description: str, total: int):
        self.description, self.total, self.done = description, total, 0
        self.progress = None
        self.lock = threading.Lock()
        self.timer = threading.Timer(BAR_DELAY, self._show)
        self.timer.daemon = True
        self.timer.start()

    def _show(self) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        with self.lock:
            if self.timer is None:  # closed meanwhile
                return
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TimeRemainingColumn())
            self.progress = Progress(*columns, console=_console, transient=False)
            self.task = self.progress.add_task(self.description, total=self.total, completed=self.done)
            self.progress.start()

    def advance(self, n: int = 1) -> None:
        with self.lock:
            self.done += n
            if self.progress is not None:
                self.progress.advance(self.task, n)

    def close(self) -> None:
        with self.lock:
            self.timer.cancel()
            self.timer = None
            if self.progress is not None:
                self.progress.stop()
