import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

from headstart.evaluate import classification_metrics, expected_calibration_error


def one_hot_proba(pred, k, confidence=0.8):
    """Rows that put `confidence` on the predicted class and spread the rest evenly."""
    proba = np.full((len(pred), k), (1 - confidence) / (k - 1))
    proba[np.arange(len(pred)), pred] = confidence
    return proba


def test_hand_computed_three_class_case():
    # true 0 0 1 2, predicted 0 1 1 2
    y = np.array([0, 0, 1, 2])
    m = classification_metrics(y, one_hot_proba([0, 1, 1, 2], 3), ["a", "b", "c"])
    assert m["n"] == 4
    assert m["accuracy"] == pytest.approx(0.75)
    # a: P=1/1 R=1/2 F1=2/3; b: P=1/2 R=1/1 F1=2/3; c: 1, 1, 1
    assert m["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert m["per_class"]["b"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert m["per_class"]["c"] == pytest.approx({"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1})
    assert m["macro_f1"] == pytest.approx(7 / 9)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert m["classes"] == ["a", "b", "c"]
    # all confidences 0.8 in one bin: |accuracy 0.75 - confidence 0.8|
    assert m["ece"] == pytest.approx(0.05)


def test_confusion_matrix_rows_are_true_columns_are_predicted():
    # three samples of class "x" all predicted "y"
    m = classification_metrics([0, 0, 0], one_hot_proba([1, 1, 1], 2), ["x", "y"])
    assert m["confusion_matrix"] == [[0, 3], [0, 0]]
    assert m["per_class"]["x"]["recall"] == 0.0
    assert m["per_class"]["y"]["precision"] == 0.0  # zero_division=0, not a warning or NaN


def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 60)
    proba = rng.dirichlet(np.ones(4), size=60)
    m = classification_metrics(y, proba, ["w", "x", "y", "z"])
    assert m["macro_f1"] == pytest.approx(f1_score(y, proba.argmax(1), average="macro"))


def test_output_is_plain_json_types():
    rng = np.random.default_rng(0)
    m = classification_metrics(rng.integers(0, 3, 20), rng.dirichlet(np.ones(3), 20), ["a", "b", "c"])
    json.dumps(m)
    for key in ("accuracy", "macro_f1", "ece"):
        assert type(m[key]) is float
    assert type(m["n"]) is int
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)
    assert all(type(v) is float for v in (m["per_class"]["a"]["precision"], m["per_class"]["a"]["f1"]))
    assert type(m["per_class"]["a"]["support"]) is int


def test_ece_hand_computed_separate_bins():
    # confidences 0.95, 0.85, 0.65, 0.75 land in four different bins (width 1/15);
    # the first three are right, the last is wrong.
    y = [0, 1, 0, 1]
    proba = [[0.95, 0.05], [0.15, 0.85], [0.65, 0.35], [0.75, 0.25]]
    expected = (0.05 + 0.15 + 0.35 + 0.75) / 4
    assert expected_calibration_error(y, proba) == pytest.approx(expected)


def test_ece_hand_computed_shared_bin():
    # 0.62 (right) and 0.64 (wrong) share the bin (0.6, 0.667]: |0.5 - 0.63| = 0.13
    assert expected_calibration_error([0, 0], [[0.62, 0.38], [0.36, 0.64]]) == pytest.approx(0.13)
    # with one bin everything is pooled: accuracy 0.5, mean confidence 0.63
    assert expected_calibration_error([0, 0], [[0.62, 0.38], [0.36, 0.64]], n_bins=1) == pytest.approx(0.13)


def test_ece_of_perfect_predictions_is_one_minus_mean_confidence():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(3), size=50)
    y = proba.argmax(1)  # every prediction right
    assert expected_calibration_error(y, proba) == pytest.approx(1 - proba.max(1).mean())
    assert expected_calibration_error([0, 1], [[1.0, 0.0], [0.0, 1.0]]) == 0.0


@pytest.mark.parametrize(
    "y, proba, classes",
    [
        ([0, 1], [[0.5, 0.5]], ["a", "b"]),  # length mismatch
        ([0, 2], [[0.5, 0.5], [0.5, 0.5]], ["a", "b"]),  # label out of range
        ([0], [[0.5, 0.5]], ["a", "b", "c"]),  # columns != classes
        ([0], [[0.5, 0.5]], ["a", "a"]),  # duplicate names
        ([], np.zeros((0, 2)), ["a", "b"]),  # nothing to evaluate
    ],
)
def test_bad_inputs_raise(y, proba, classes):
    with pytest.raises(ValueError):
        classification_metrics(y, proba, classes)
