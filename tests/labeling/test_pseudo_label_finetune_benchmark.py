"""benchmarks/pseudo_label_finetune.py: which pool items become pseudo-labels."""

from __future__ import annotations

import numpy as np

from labeling_helpers import load_benchmark


def test_the_most_confident_items_of_each_predicted_class_are_taken_and_labeled_items_left_out():
    bench = load_benchmark("pseudo_label_finetune")
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.95, 0.05], [0.2, 0.8], [0.45, 0.55], [0.1, 0.9]])
    chosen = bench.confident_per_class(proba, exclude=np.array([2]), per_class=1)
    assert chosen.tolist() == [0, 5]  # item 2 is the most confident class 0 but is labeled already
    assert bench.confident_per_class(proba, exclude=np.array([], dtype=int), per_class=2).tolist() == [0, 2, 3, 5]
    every = bench.confident_per_class(proba, exclude=np.array([], dtype=int), per_class=5)
    assert every.tolist() == [0, 1, 2, 3, 4, 5]
