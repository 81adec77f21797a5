"""benchmarks/export.py's timing: engines take turns round by round, and items/s is the fastest round's."""

from __future__ import annotations

import numpy as np
import pytest

from labeling.labeling_helpers import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("export")


def test_engines_take_turns_each_round_and_keep_the_last_probabilities(bench):
    calls = []

    def engine(name, value):
        def forward(feed):
            calls.append(name)
            return np.full((len(feed["x"]), 2), value)
        return forward, 0, None

    found = {"a": engine("a", 0.25), "b": engine("b", 0.75)}
    batches = [{"x": np.zeros(32)}, {"x": np.zeros(8)}]
    passes = bench.measure_interleaved(found, batches, [{"x": np.zeros(1)}], rounds=3)
    # a warm-up of each, then per round every batch and the single item of a, then of b
    assert calls == ["a", "b"] + ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3
    proba, speeds, latencies = passes["b"]
    assert proba.shape == (40, 2) and np.all(proba == 0.75)
    assert len(speeds) == 3 and len(latencies) == 3


def test_the_summary_reports_the_fastest_round_and_every_round(bench):
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    row = bench.summary(proba, [100.0, 140.0, 120.0], [5.0, 7.0, 6.0], ["a", "b", "b"], ["a", "b"])
    assert row["items_per_s"] == 140.0 and row["items_per_s_rounds"] == [100.0, 140.0, 120.0]
    assert row["accuracy"] == pytest.approx(2 / 3) and row["latency_ms_p50"] == 6.0
