"""benchmarks/label_budget.py's summary, targets and stretch goal on made-up rows, and its shared loop
(benchmarks/simulated_loop.py) on a tiny pool."""

from __future__ import annotations

import numpy as np
import pytest

from labeling_helpers import load_benchmark


def rows(method, budget, accuracies, cpu=60.0):
    return [{"method": method, "seed": seed, "budget": budget, "status": "ok", "accuracy": accuracy,
             "cpu_seconds": cpu} for seed, accuracy in enumerate(accuracies)]


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("label_budget")


@pytest.fixture(scope="module")
def report():
    return load_benchmark("label_budget_report")


def made_up():
    return (rows("headstart", 50, [0.80, 0.82]) + rows("random", 50, [0.70, 0.72]) + rows("setfit", 50, [0.83, 0.83])
            + rows("headstart", 100, [0.85, 0.85], cpu=1500.0) + rows("random", 100, [0.80, 0.83])
            + rows("small-text", 100, [0.84, 0.84]) + rows("headstart", 200, [0.86, 0.86], cpu=600.0)
            + rows("random", 200, [0.84, 0.84]) + [{"method": "random", "seed": 2, "budget": 200, "status": "failed"}])


def test_summary_gives_mean_std_seeds_and_cpu_minutes_of_the_ok_rows(report):
    summary = report.summarize(made_up())
    random_200 = next(s for s in summary if s["method"] == "random" and s["budget"] == 200)
    assert random_200["seeds"] == 2 and random_200["accuracy_mean"] == pytest.approx(0.84)
    headstart_50 = next(s for s in summary if s["method"] == "headstart" and s["budget"] == 50)
    assert headstart_50["accuracy_mean"] == pytest.approx(0.81)
    assert headstart_50["accuracy_std"] == pytest.approx(np.std([0.80, 0.82], ddof=1))
    assert headstart_50["cpu_minutes_mean"] == pytest.approx(1.0)


def test_summary_says_which_fit_modes_the_no_pool_rows_ran_in(report, capsys):
    older = rows("no-pool", 100, [0.70])  # made before the rows said: the probe
    auto = [{**row, "seed": 1, "fit_mode": "auto"} for row in rows("no-pool", 100, [0.76])]
    summary = report.summarize(older + auto + [{**row, "fit_mode": "auto"} for row in rows("no-pool", 200, [0.8])])
    assert [s["fit_modes"] for s in summary] == [["auto", "probe"], ["auto"]]
    report.print_summary("sst2", summary, quick=False)
    lines = capsys.readouterr().out.splitlines()
    assert next(line for line in lines if line.strip().startswith("100")).endswith("(2) auto+probe")
    assert next(line for line in lines if line.strip().startswith("200")).rstrip().endswith("(1)")


def test_targets_compare_with_the_best_peer_measured_and_random_plus_three_points(report):
    targets = {t["target"]: t for t in report.evaluate_targets("sst2", report.summarize(made_up()))}
    at_50 = targets["sst2 50 labels: headstart loop >= best peer (random + SetFit)"]
    assert at_50["reference"] == pytest.approx(0.83) and at_50["met"] is False
    at_100 = targets["sst2 100 labels: headstart loop >= best peer (small-text + probe)"]
    assert at_100["met"] is True
    margin_100 = targets["sst2 100 labels: headstart loop >= random + probe + 3%"]
    assert margin_100["reference"] == pytest.approx(0.845) and margin_100["met"] is True
    margin_200 = targets["sst2 200 labels: headstart loop >= random + probe + 3%"]
    assert margin_200["reference"] == pytest.approx(0.87) and margin_200["met"] is False
    assert not any(t["target"].startswith("sst2 20 labels") for t in targets.values())  # from 50 labels on


def test_the_default_mode_without_the_pool_is_a_peer_and_its_rows_of_the_probe_are_not(report):
    auto = [{**row, "fit_mode": "auto"} for row in rows("no-pool", 100, [0.87, 0.87])]
    probe = rows("no-pool", 200, [0.95])  # made before the rows said: the probe
    targets = {t["target"]: t for t in report.evaluate_targets("sst2", report.summarize(made_up() + auto + probe))}
    at_100 = targets["sst2 100 labels: headstart loop >= best peer (headstart labels, no pool)"]
    assert at_100["reference"] == pytest.approx(0.87) and at_100["met"] is False
    at_200 = targets["sst2 200 labels: headstart loop >= best peer (random + probe)"]
    assert at_200["reference"] == pytest.approx(0.84) and at_200["met"] is True


def test_a_target_with_nothing_measured_is_not_measured(report):
    targets = report.evaluate_targets("fashion", report.summarize(rows("random", 100, [0.7])))
    assert {t["met"] for t in targets} == {None}


def test_stretch_takes_the_best_mean_within_the_labels_and_halves_the_cpu_for_two_cores(report):
    goal = report.stretch("sst2", report.summarize(made_up()))
    assert goal["best"] == pytest.approx(0.86) and goal["at_labels"] == 200
    assert goal["points_short"] == 0.0
    assert goal["two_core_minutes"] == pytest.approx(5.0) and goal["met"] is True
    slow = report.stretch("sst2", report.summarize(rows("headstart", 300, [0.9], cpu=1500.0)))
    assert slow["two_core_minutes"] == pytest.approx(12.5) and slow["met"] is False
    short = report.stretch("fashion", report.summarize(rows("headstart", 200, [0.85]) + rows("headstart", 300, [0.95])))
    assert short["best"] == pytest.approx(0.85) and short["points_short"] == pytest.approx(3.0)
    assert report.stretch("synthetic", []) is None


def test_the_shared_loop_refits_when_due_and_keeps_a_model_it_could_not_refit():
    loop = load_benchmark("simulated_loop")
    fits = []

    def fit(labeled, model):
        fits.append(int(labeled.sum()))
        return model if labeled.sum() < 20 else f"model at {labeled.sum()}"

    def choose(model, labeled, n, round_):
        return np.flatnonzero(~labeled)[:n]

    run = loop.simulate(100, [], choose, fit, batch=10, max_labels=45, retrain_every=10, model="zero-shot")
    assert fits == [10, 20, 30, 40, 45] and run.model == "model at 45"  # the refit at 10 kept the zero-shot model
    assert run.order.tolist() == list(range(45))
    assert run.cpu_at(30) is not None and run.cpu_at(46) is None

    fits.clear()
    never = loop.simulate(100, [0, 1], choose, lambda labeled, model: fits.append(int(labeled.sum())) or model,
                          batch=5, max_labels=12, model=None)
    assert fits == [2, 7, 12] and never.model is None  # refused refits are tried again every batch


def test_a_rerun_method_s_earlier_rows_are_not_merged_back_from_disk(bench, tmp_path, monkeypatch):
    earlier = rows("random", 50, [0.70, 0.72]) + rows("pool-fit", 50, [0.60, 0.61])
    monkeypatch.setattr(bench, "load_previous", lambda name, quick: {"rows": earlier, "orders": {"0": [1, 2]}})
    args = bench.parse_args(["--datasets", "synthetic", "--resume", "--rerun", "pool-fit"])
    document = {"rows": rows("pool-fit", 50, [0.75])}  # seed 0 run again; seed 1 not yet

    bench._merge_on_disk("synthetic", args, document)

    kept = {(r["method"], r["seed"], r["accuracy"]) for r in document["rows"]}
    assert kept == {("pool-fit", 0, 0.75), ("random", 0, 0.70), ("random", 1, 0.72)}
    assert document["orders"] == {"0": [1, 2]}


def test_a_rerun_at_some_budgets_keeps_the_method_s_rows_at_the_others(bench, monkeypatch):
    earlier = rows("pool-fit", 50, [0.60, 0.61]) + rows("pool-fit", 300, [0.76, 0.82])
    monkeypatch.setattr(bench, "load_previous", lambda name, quick: {"rows": earlier})
    args = bench.parse_args(["--datasets", "synthetic", "--resume", "--rerun", "pool-fit", "--budgets", "300"])
    document = {"rows": rows("pool-fit", 300, [0.83])}  # seed 0 at 300 run again; seed 1 not yet

    bench._merge_on_disk("synthetic", args, document)

    kept = {(r["budget"], r["seed"], r["accuracy"]) for r in document["rows"]}
    assert kept == {(50, 0, 0.60), (50, 1, 0.61), (300, 0, 0.83)}


def test_a_rerun_of_fewer_seeds_keeps_the_other_seeds_rows(bench, monkeypatch):
    earlier = rows("pool-fit", 200, [0.80, 0.79, 0.78])
    monkeypatch.setattr(bench, "load_previous", lambda name, quick: {"rows": earlier})
    args = bench.parse_args(["--datasets", "synthetic", "--resume", "--rerun", "pool-fit", "--budgets", "200",
                             "--seeds", "1"])
    document = {"rows": rows("pool-fit", 200, [0.83])}  # seed 0 run again; seeds 1 and 2 are not this run's

    bench._merge_on_disk("synthetic", args, document)

    assert {(r["seed"], r["accuracy"]) for r in document["rows"]} == {(0, 0.83), (1, 0.79), (2, 0.78)}


def test_a_resumed_file_keeps_every_run_s_note_once_oldest_first(bench):
    assert bench.with_note(None, "stop 1: seeds 0-1") == ["stop 1: seeds 0-1"]
    assert bench.with_note("stop 1: seeds 0-1", "stop 2: seeds 2-4") == ["stop 1: seeds 0-1", "stop 2: seeds 2-4"]
    assert bench.with_note(["a", "b"], "a") == ["a", "b"]


def test_a_report_keeps_every_row_and_adds_its_note_and_a_resume_drops_only_the_rerun_rows(bench, monkeypatch):
    earlier = rows("random", 50, [0.70]) + rows("pool-fit", 50, [0.60])
    monkeypatch.setattr(bench, "load_previous",
                        lambda name, quick: {"rows": list(earlier), "runs_note": ["stop 1"]})

    report = bench.starting_document("synthetic", bench.parse_args(["--report", "--note", "stop 2"]))
    resumed = bench.starting_document("synthetic", bench.parse_args(["--resume", "--rerun", "pool-fit"]))
    fresh = bench.starting_document("synthetic", bench.parse_args(["--note", "stop 3"]))

    assert report["rows"] == earlier and report["runs_note"] == ["stop 1", "stop 2"]
    assert [r["method"] for r in resumed["rows"]] == ["random"] and resumed["runs_note"] == ["stop 1"]
    assert fresh == {"rows": [], "runs_note": ["stop 3"]}


def test_the_project_s_model_is_the_loop_s_probe_until_its_fine_tunes_come(report):
    summary = report.with_served(report.summarize(
        rows("headstart", 50, [0.75]) + rows("headstart", 100, [0.76]) + rows("headstart", 150, [0.77])
        + rows("pool-fit", 50, [0.72]) + rows("pool-fit", 100, [0.78]) + rows("pool-fit", 150, [0.80])), every=100)
    served = {s["budget"]: s["accuracy_mean"] for s in summary if s["method"] == report.SERVED}
    assert served == {50: 0.75, 100: 0.78, 150: 0.77}  # a fine-tune is queued at 100, 200, ...: not at 150
    targets = [t["target"] for t in report.every_target("sst2", summary)]
    assert any(t.startswith("sst2 100 labels: headstart project's model") for t in targets)
