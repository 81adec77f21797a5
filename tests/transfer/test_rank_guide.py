"""What a ranking's numbers mean: the guide, the predicted accuracy and its calibration on the benchmark."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from headstart.transfer.rank_guide import (
    CALIBRATED_ITEMS,
    FINETUNED_OVER_PROBE,
    accuracy_range_text,
    guide,
    predicted_accuracy,
    prediction_note,
)

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _calibration_script():
    spec = importlib.util.spec_from_file_location("rank_calibration", BENCHMARKS / "rank_calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_calibration_is_the_one_the_benchmark_results_give():
    result = _calibration_script().calibration()
    low, high = result["finetuned_over_probe"]
    assert FINETUNED_OVER_PROBE == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))
    assert CALIBRATED_ITEMS == tuple(result["n_train"])
    # every pretrained candidate of the three cases, random-init references left out
    assert result["cases"] == ["fashion", "sst2", "trec"] and result["n_candidates"] == 12
    assert not any("random init" in row["backbone"] for row in result["rows"])
    assert 0 < low < high  # fine-tuning beat the probe score every time


def test_predicted_accuracy_adds_the_calibrated_range_and_stops_at_one():
    low, high = FINETUNED_OVER_PROBE
    assert predicted_accuracy(0.80) == (pytest.approx(0.80 + low), pytest.approx(0.80 + high))
    assert predicted_accuracy(0.95)[1] == 1.0 and predicted_accuracy(1.0) == (1.0, 1.0)
    assert accuracy_range_text(0.80) == f"{100 * (0.80 + low):.0f}-{100 * (0.80 + high):.0f}%"
    assert accuracy_range_text(1.0) == "100%"


def test_the_guide_and_the_note_are_one_line_each_and_say_when_the_data_are_small():
    line = guide("logme")
    assert "\n" not in line and "logme orders the candidates" in line
    assert "probe is the cross-validated accuracy" in line
    many, few = prediction_note(CALIBRATED_ITEMS[0]), prediction_note(42)
    assert "\n" not in many and "no calibration" in many and "rough" not in many
    assert few.startswith(many) and "With 42 items scored here" in few and "rough" in few
