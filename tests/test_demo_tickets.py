"""The shipped demo (`make demo`): its tickets are what the README says, and transfer clearly helps on them.

The fast tests read the example files only; the integration test runs the Makefile's own `headstart
fit` command (its arguments read from the Makefile, so the test follows the demo) with minilm-l6.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shlex
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
GENERATOR = EXAMPLES / "make_support_tickets.py"


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _demo_fit_arguments() -> list[str]:
    """The arguments of the `headstart fit` line of the Makefile's demo recipe, continuations joined."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    line = next(line for line in recipe.splitlines() if "headstart fit" in line)
    return shlex.split(line.split("headstart fit", 1)[1])


def test_the_generator_writes_the_committed_tickets(tmp_path):
    spec = importlib.util.spec_from_file_location("make_support_tickets", GENERATOR)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.main(tmp_path)
    for name in ("support_tickets.csv", "support_tickets_test.csv"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), f"run python {GENERATOR.name}"


def test_few_labeled_tickets_a_large_test_file_and_no_test_ticket_seen_in_training():
    labeled, test = _rows(EXAMPLES / "support_tickets.csv"), _rows(EXAMPLES / "support_tickets_test.csv")
    labeled_counts, test_counts = Counter(r["label"] for r in labeled), Counter(r["label"] for r in test)
    assert set(labeled_counts) == set(test_counts) and len(labeled_counts) >= 4
    assert all(8 <= n <= 15 for n in labeled_counts.values()), labeled_counts
    assert len(test) >= 200 and min(test_counts.values()) >= 40, test_counts
    test_words = [_words(r["text"]) for r in test]
    assert len(set(test_words)) == len(test_words), "a test ticket appears twice"
    for row in labeled:  # not even inside a longer test ticket
        assert not [t for t in test_words if _words(row["text"]) in t], row["text"]


def test_the_demo_fits_on_the_example_tickets_and_predicts_the_new_ones():
    arguments = _demo_fit_arguments()
    assert arguments[0] == "examples/support_tickets.csv"
    assert arguments[arguments.index("--test") + 1] == "examples/support_tickets_test.csv"
    assert "examples/new_tickets.csv" in (REPO / "Makefile").read_text(encoding="utf-8")
    assert len(_rows(EXAMPLES / "new_tickets.csv")) >= 5


@pytest.mark.requires_minilm
def test_the_demo_shows_transfer_clearly_helping_with_believable_confidence(tmp_path, monkeypatch):
    from headstart.cli import app

    arguments = _demo_fit_arguments()
    arguments[arguments.index("--out") + 1] = str(tmp_path / "run")
    monkeypatch.chdir(REPO)  # the Makefile's paths are relative to the repository
    result = CliRunner().invoke(app, ["fit", *arguments])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    baseline = metrics["baseline"]
    assert metrics["n"] >= 200 and baseline["n"] == metrics["n"]
    assert "transfer helps" in baseline["verdict"] and baseline["helps"], baseline["verdict"]
    assert baseline["ci_low"] > 0.10, baseline["verdict"]  # measured: about +20 points (seeds 0-2)
    # High but not perfect (measured 91.0%), and the confidence shown is close to it (ECE 0.065).
    assert 0.80 <= metrics["accuracy"] < 0.99
    assert metrics["ece"] < 0.15
