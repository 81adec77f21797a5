"""benchmarks/label_quality.py's runs on synthetic features: the shuffled control is held back and
flags nothing, a learnable set is not, and its counts add up."""

from __future__ import annotations


import numpy as np

from labeling_helpers import blobs, load_benchmark


def test_runs_hold_back_a_model_at_chance_and_score_the_flags_of_a_learnable_one():
    module = load_benchmark("label_quality")
    x, y = blobs(300, 2, spread=3.0, seed=4)
    learnable = module.one_run(x, y, ["a", "b"], 200, seed=0, shuffled=False)
    assert learnable["flipped"] == 20 and not learnable["held_back"] and learnable["prevented"]["flags"] == 0
    for method, score in learnable["methods"].items():
        assert 0 <= score["true_flags"] <= min(score["flagged"], 20), method
        assert score["recall"] == score["true_flags"] / 20
    assert learnable["methods"]["headstart"]["recall"] >= 0.5
    assert learnable["methods"]["cap5%"]["flagged"] <= 10

    chance = module.one_run(x, y, ["a", "b"], 200, seed=0, shuffled=True)
    assert chance["held_back"] and chance["methods"]["headstart"]["flagged"] == 0
    assert chance["prevented"]["flags"] > 0 and chance["prevented"]["wrong"] > chance["prevented"]["flags"] / 2
    assert chance["labels_needed"] > 200

    rows = module.summarize([learnable, chance])
    assert [(r["setting"], r["labels"], r["held back"]) for r in rows] == [("sst2", 200, "0/1"), ("shuffled", 200, "1/1")]
    assert np.isclose(rows[0]["headstart R"], learnable["methods"]["headstart"]["recall"])
