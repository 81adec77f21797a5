"""Progress where output is not a terminal (a log file, CI): a line every ~10 s with the step, the
rate and the time left; nothing for short steps; status lines never wrapped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from headstart import progress

REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_long_step_writes_a_line_every_ten_seconds_with_rate_and_time_left(monkeypatch):
    clock, lines = FakeClock(), []
    monkeypatch.setattr(progress, "_clock", clock)
    shown = progress.ProgressLines("fine-tuning", 100, write=lines.append)
    for _ in range(50):  # 2 steps a second for 25 s
        clock.now += 0.5
        shown.advance()
    shown.close()
    assert len(lines) == 3  # at 10 s and 20 s, and the last one
    assert lines[0] == "fine-tuning: 20/100 (20%), 2.0/s, 10 s elapsed, about 40 s left"
    assert lines[1] == "fine-tuning: 40/100 (40%), 2.0/s, 20 s elapsed, about 30 s left"
    assert lines[2].startswith("fine-tuning: 50/100 (50%), 2.0/s, 25 s elapsed")


def test_slow_steps_give_seconds_each_and_minutes_left(monkeypatch):
    clock, lines = FakeClock(), []
    monkeypatch.setattr(progress, "_clock", clock)
    shown = progress.ProgressLines("contrastive tuning", 400, write=lines.append)
    clock.now += 75
    shown.advance(5)
    assert lines == ["contrastive tuning: 5/400 (1%), 15.0 s each, 1 min 15 s elapsed, about 1 h 38 min left"]


def test_a_short_step_writes_nothing(monkeypatch):
    clock, lines = FakeClock(), []
    monkeypatch.setattr(progress, "_clock", clock)
    shown = progress.ProgressLines("features", 10, write=lines.append)
    for _ in range(10):
        clock.now += 0.5
        shown.advance()
    shown.close()
    assert lines == []


SCRIPT = """
import itertools
from headstart import progress
ticks = itertools.count(0, 3)  # every call of the clock: 3 s later
progress._clock = lambda: float(next(ticks))
progress.say("a sentence of the fit, " * 8 + "end")
with progress.progress_bar("fine-tuning", 10) as advance:
    for _ in range(10):
        advance()
"""


def test_output_to_a_file_gets_lines_not_a_bar_and_sentences_are_not_wrapped(tmp_path):
    log = tmp_path / "fit.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "80"}
    env.pop("HEADSTART_QUIET", None)
    with open(log, "w") as handle:
        subprocess.run([sys.executable, "-c", SCRIPT], stderr=handle, env=env, check=True, timeout=120)
    lines = log.read_text().splitlines()
    assert lines[0] == "a sentence of the fit, " * 8 + "end"  # 191 characters, one line
    steps = [line for line in lines[1:] if line.startswith("fine-tuning: ")]
    assert len(steps) >= 3 and steps == lines[1:], lines
    assert "\x1b" not in log.read_text() and "━" not in log.read_text()  # no bar, no terminal codes
    assert steps[-1].startswith("fine-tuning: 10/10 (100%)")
    assert all("elapsed" in line for line in steps) and "left" in steps[0]


def test_quiet_writes_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HEADSTART_QUIET": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True,
                          timeout=120)
    assert done.stderr == ""


def test_on_a_terminal_a_bar_appears_only_after_a_second_of_work(monkeypatch):
    import io
    import time

    from rich.console import Console

    screen = io.StringIO()
    monkeypatch.setattr(progress, "_console", Console(file=screen, force_terminal=True, width=100))
    monkeypatch.delenv("HEADSTART_QUIET", raising=False)
    with progress.progress_bar("quick step", 10) as advance:
        advance(10)
    assert screen.getvalue() == ""  # a quick call of the Python API draws nothing
    monkeypatch.setattr(progress, "BAR_DELAY", 0.0)
    with progress.progress_bar("long step", 10) as advance:
        for _ in range(50):  # the bar's timer thread starts it; give it the time it needs
            if "long step" in screen.getvalue():
                break
            time.sleep(0.1)
        advance(10)
    assert "long step" in screen.getvalue() and "10/10" in screen.getvalue()
