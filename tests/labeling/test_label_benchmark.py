"""benchmarks/active_learning.py --quick: the synthetic smoke run always, SST-2 where its data and MiniLM are."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labeling_helpers import load_benchmark


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    module = load_benchmark("active_learning")
    monkeypatch.setattr(module.common, "RESULTS_DIR", tmp_path)
    return module, tmp_path


def test_quick_synthetic_run_writes_curves_and_targets(results_dir, capsys):
    module, folder = results_dir
    assert module.main(["--quick", "--datasets", "synthetic", "--strategies", "random,margin,margin-diverse",
                        "--issues"]) == 0
    document = json.loads(next(folder.glob("active_learning-quick-*.json")).read_text())
    data = document["datasets"]["synthetic"]
    assert [r["key"] for r in data["summary"]] == ["random", "margin", "margin-diverse"]
    for run in data["runs"]:
        labels = [n for n, _ in run["points"]]
        assert labels == list(range(10, 111, 20))  # start 10, batches of 20, up to 110
        assert run["labels_to_target"] is None or run["labels_to_target"] in labels
    assert 0.5 < data["full_pool_accuracy"] <= 1 and data["target_accuracy"] == pytest.approx(
        0.95 * data["full_pool_accuracy"])
    assert data["label_issues"]["recall"] > 0.5
    assert [t["target"].split(": ")[1] for t in document["targets"]] == [
        f"default ({module.DEFAULT_STRATEGY}) labels <= margin's mean", "default labels < random's mean"]
    assert [row["peer"] for row in data["paired"]] == ["margin", "random"]
    assert all(row["n"] + row["left_out"] == 1 for row in data["paired"])  # one seed: no interval
    assert all(row["low"] is None for row in data["paired"])
    printed = capsys.readouterr().out
    assert "labels to reach 95% of the full-pool probe" in printed and "Targets" in printed
    assert "paired difference in labels to target" in printed


def test_labels_to_reach():
    module = load_benchmark("active_learning")
    assert module.labels_to_reach([(10, 0.5), (30, 0.7), (50, 0.9)], 0.7) == 30
    assert module.labels_to_reach([(10, 0.5)], 0.7) is None


def made_up_runs(labels: dict[str, list]) -> list[dict]:
    return [{"strategy": strategy, "seed": seed, "status": "ok", "labels_to_target": n}
            for strategy, values in labels.items() for seed, n in enumerate(values)]


def test_paired_comparison_cancels_the_spread_the_seeds_share():
    module = load_benchmark("active_learning")
    default = module.DEFAULT_STRATEGY
    # seeds differ by hundreds of labels, but the default is 20 below margin in every seed
    runs = made_up_runs({default: [130, 330, 610, 230], "margin": [150, 350, 630, 250],
                         "random": [150, 310, 700, None]})
    by_peer = {row["peer"]: row for row in module.paired_comparisons(runs)}
    margin = by_peer["margin"]
    assert margin["mean"] == -20 and margin["low"] == margin["high"] == -20  # no spread left in the differences
    assert (margin["below"], margin["equal"], margin["above"], margin["n"]) == (4, 0, 0, 4)
    random = by_peer["random"]  # a seed where random never reached the target is left out, and counted
    assert random["n"] == 3 and random["left_out"] == 1 and random["by_seed"] == {0: -20, 1: 20, 2: -90}
    assert random["mean"] == pytest.approx(-30) and random["low"] < -30 < random["high"]
    assert random["low"] < 0 < random["high"]  # one seed the other way: the interval takes in zero

    summary = [{"key": default, "labels mean": 325.0}, {"key": "margin", "labels mean": 345.0},
               {"key": "random", "labels mean": None}]
    margin_target, random_target = module.dataset_targets("made-up", summary, module.paired_comparisons(runs))
    assert margin_target["met"] and margin_target["paired_difference"]["mean"] == -20
    assert random_target["reference"] == float("inf") and random_target["met"]  # random missed in one seed


def test_seed_spread_and_interval_against_scipy():
    from scipy import stats

    module = load_benchmark("seed_statistics")
    assert module.spread([150, 630, 330]) == {"n": 3, "mean": 370, "min": 150, "max": 630,
                                              "std": pytest.approx(np.std([150, 630, 330], ddof=1))}
    assert module.spread([])["mean"] is None and module.spread([5])["std"] is None
    first, second = {0: 300, 1: 250, 2: 410, 3: 190}, {0: 320, 1: 300, 2: 400, 3: 260}
    row = module.paired_difference(first, second)
    differences = [-20, -50, 10, -70]
    low, high = stats.t.interval(0.95, 3, loc=np.mean(differences), scale=stats.sem(differences))
    assert row["mean"] == pytest.approx(-32.5) and (row["low"], row["high"]) == pytest.approx((low, high))
    assert module.paired_difference({0: 10}, {1: 10})["n"] == 0  # no seed in common: nothing to say


@pytest.mark.requires_minilm
@pytest.mark.requires_shared_data
def test_quick_sst2_run(results_dir):
    module, folder = results_dir
    assert module.main(["--quick", "--datasets", "sst2", "--strategies", "random,margin", "--pool", "600",
                        "--test", "200"]) == 0
    data = json.loads(next(folder.glob("active_learning-quick-*.json")).read_text())["datasets"]["sst2"]
    assert data["pool"] == 600 and data["test"] == 200 and data["full_pool_accuracy"] > 0.65


def test_reference_probe_is_scikit_learns_default_on_raw_features(results_dir):
    module, folder = results_dir
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int) + (x[:, 1] > 1.2)  # three classes, one rare
    fit = module.loop_probe("reference", x, 3, 0.01, seed=0)
    expected = LogisticRegression(max_iter=2000).fit(x, y).predict_proba(x)
    np.testing.assert_allclose(fit(x, y)(x), expected, rtol=1e-6)
    two_classes = y < 2  # a class with no label yet gets probability 0, columns stay aligned
    proba = fit(x[two_classes], y[two_classes])(x)
    assert proba.shape == (300, 3) and np.all(proba[:, 2] == 0)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert module.main(["--quick", "--datasets", "synthetic", "--strategies", "random", "--probe", "reference"]) == 0
    data = json.loads(next(folder.glob("active_learning-quick-*.json")).read_text())["datasets"]["synthetic"]
    assert data["probe"] == "reference" and data["full_pool_accuracy"] == data["loop_probe_full_pool_accuracy"]


def test_a_judging_share_has_its_random_labels_served_beside_the_strategy_s(results_dir, monkeypatch):
    from headstart.labeling.judging import judging_mask

    module, folder = results_dir
    runs, simulate = [], module.simulated_loop.simulate
    monkeypatch.setattr(module.simulated_loop, "simulate", lambda *a, **k: runs.append(simulate(*a, **k)) or runs[-1])
    assert module.main(["--quick", "--datasets", "synthetic", "--strategies", "margin", "--judging-share", "0.3"]) == 0
    assert [path.name.split("-2")[0] for path in folder.glob("*.json")] == ["active_learning-quick-synthetic-judging0.3"]
    order = runs[0].order
    mask = judging_mask(int(order.max()) + 1 + 10_000, 0.3)  # the mask of a prefix is the pool's
    assert len(order) == 110 and mask[order].sum() == 33  # 30% of the labels, the random start's included
