"""Learning curves: sampling, the labels-saved arithmetic, the API, the CLI and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.transfer.curve import ALL, Curve, default_sizes, falling, inner_split, sample_per_class, summarize

requires_effnet = pytest.mark.requires_effnet
runner = CliRunner()


def test_default_sizes_double_up_to_the_smallest_class():
    assert default_sizes(40) == [4, 8, 16, 32, ALL]
    assert default_sizes(32) == [4, 8, 16, ALL]
    assert default_sizes(3) == [ALL]


def test_sample_per_class_draws_n_of_each_class_reproducibly():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 20)
    pick = sample_per_class(labels, 4, seed=1)
    assert np.bincount(labels[pick]).tolist() == [4, 3, 4]  # a class with fewer gives all it has
    assert pick.tolist() == sample_per_class(labels, 4, seed=1).tolist()
    assert pick.tolist() != sample_per_class(labels, 4, seed=2).tolist()
    assert sample_per_class(labels, ALL, seed=0).tolist() == list(range(33))


def test_inner_split_holds_out_a_stratified_fifth_only_when_needed():
    labels = np.repeat([0, 1], 10)
    fit, held = inner_split(labels, 0, need_val=False)
    assert len(fit) == 20 and len(held) == 0
    fit, held = inner_split(labels, 0, need_val=True)
    assert np.bincount(labels[held]).tolist() == [2, 2] and not set(fit) & set(held)
    fit, held = inner_split(np.repeat([0, 1], 600), 0, need_val=False)
    assert len(held) == 240


def _rows(transfer: dict, scratch: dict) -> list[dict]:
    return [{"per_class": size, "labels": 3 * (size if size != ALL else 100), "seed": seed,
             "transfer": transfer[size] + 0.01 * seed, "scratch": scratch[size] + 0.01 * seed}
            for size in transfer for seed in range(1 if size == ALL else 2)]


def test_labels_saved_is_where_transfer_reaches_scratch_on_all_labels():
    curve = Curve("bb", _rows({4: 0.5, 8: 0.8, 16: 0.85, ALL: 0.9}, {4: 0.3, 8: 0.4, 16: 0.5, ALL: 0.75}), "TF-IDF", 50)
    saved = curve.saved()
    assert saved == {"scratch_all_accuracy": 0.75, "all_labels": 300, "labels_needed": 24, "per_class_needed": 8,
                     "labels_saved": 276}
    assert "Labels transfer saved: 276 (92%)" in curve.sentence() and "24 labels (8 a class)" in curve.sentence()
    assert curve.summary[0]["transfer_mean"] == pytest.approx(0.505) and curve.summary[0]["seeds"] == 2
    never = Curve("bb", _rows({4: 0.2, ALL: 0.5}, {4: 0.3, ALL: 0.7}), "TF-IDF", 50)
    assert never.saved()["labels_saved"] is None and "saved no labels" in never.sentence()


def _falling_scratch() -> Curve:
    """The report of issue 23: a scratch CNN at 0.80 with 12 labels, 0.51 with 24, 0.52 with all 60."""
    return Curve("bb", _rows({4: 0.6, 8: 0.8, ALL: 0.9}, {4: 0.80, 8: 0.51, ALL: 0.52}), "small CNN", 200)


def test_a_scratch_curve_that_falls_is_flagged_and_no_labels_saved_are_claimed(tmp_path):
    curve = _falling_scratch()
    assert [(f["from_per_class"], f["per_class"]) for f in curve.falls["scratch"]] == [(4, 8), (4, ALL)]
    assert curve.falls["transfer"] == []
    saved = curve.saved()
    assert saved["labels_saved"] is None and saved["labels_needed"] is None and "falls" in saved["not_computed"]
    sentence = curve.sentence()
    assert "Labels transfer saved: not computed" in sentence and "falls as labels grow" in sentence
    assert "80.5% at 12 labels, 51.5% at 24" in sentence
    curve.save(tmp_path)
    data = json.loads((tmp_path / "curve.json").read_text())
    assert data["falls"]["scratch"][0]["drop"] == pytest.approx(0.29) and data["saved"]["labels_saved"] is None
    assert "not computed" in (tmp_path / "curve.html").read_text()


def test_a_falling_transfer_curve_is_noted_but_labels_saved_still_computed():
    curve = Curve("bb", _rows({4: 0.8, 8: 0.6, ALL: 0.9}, {4: 0.3, 8: 0.4, ALL: 0.5}), "TF-IDF", 500)
    assert [f["per_class"] for f in curve.falls["transfer"]] == [8] and curve.falls["scratch"] == []
    assert curve.saved()["labels_saved"] == 300 - 12
    assert curve.sentence().startswith("Labels transfer saved: 288") and "the transfer curve falls" in curve.sentence()


def test_a_dip_within_the_seeds_spread_or_the_test_noise_is_not_a_fall():
    wide = _rows({4: 0.5, 8: 0.6, ALL: 0.7}, {4: 0.70, 8: 0.60, ALL: 0.8})
    wide = [dict(r, scratch=r["scratch"] + (0.15 if r["seed"] else 0)) for r in wide]
    assert falling(summarize(wide), "scratch", 10_000) == []  # 0.10 down, seeds 0.16 apart: noise
    narrow = _rows({4: 0.5, 8: 0.6, ALL: 0.7}, {4: 0.70, 8: 0.60, ALL: 0.8})
    assert [f["per_class"] for f in falling(summarize(narrow), "scratch", 10_000)] == [8]
    assert falling(summarize(narrow), "scratch", 40) == []  # on 40 test items 10 points is within noise


def test_the_legend_covers_no_curve():
    for curve in (_falling_scratch(), Curve("bb", _rows({4: 0.2, 8: 0.5, 16: 0.7, ALL: 0.95},
                                                          {4: 0.9, 8: 0.92, 16: 0.94, ALL: 0.96}), "TF-IDF", 50)):
        fig = curve.figure()
        fig.canvas.draw()
        ax, = fig.axes
        box = ax.get_legend().get_window_extent()
        assert not box.overlaps(ax.get_window_extent())  # outside the axes: no point, band or line under it
        for line in ax.get_lines():
            points = ax.transData.transform(np.column_stack(line.get_data()).astype(float))
            inside = ((points[:, 0] >= box.x0) & (points[:, 0] <= box.x1) & (points[:, 1] >= box.y0)
                      & (points[:, 1] <= box.y1))
            assert not inside.any(), line.get_label()


def test_curve_api_runs_both_models_at_every_size_and_saves(learnable_csv, tiny_bert_name, tmp_path):
    curve = headstart.curve(learnable_csv, backbone=tiny_bert_name, sizes=[4, 8, ALL], seeds=2,
                            out=tmp_path / "c")
    assert [(r["per_class"], r["seed"]) for r in curve.rows] == [(4, 0), (4, 1), (8, 0), (8, 1), (ALL, 0)]
    assert [r["labels"] for r in curve.rows] == [12, 12, 24, 24, 81]  # 90 rows: 70% train + 20% val
    assert all(0 <= r["transfer"] <= 1 and 0 <= r["scratch"] <= 1 for r in curve.rows)
    assert curve.n_test == 9
    saved = json.loads((tmp_path / "c" / "curve.json").read_text())
    assert saved["sentence"] == curve.sentence() and len(saved["summary"]) == 3
    assert (tmp_path / "c" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert curve.sentence() in (tmp_path / "c" / "curve.html").read_text().replace("&#39;", "'")
    assert all(r["scratch_model"] == "tfidf-words-chars" for r in curve.rows)
    assert curve.summary[0]["scratch_models"] == {"tfidf-words-chars": 2} and curve.scratch_budget_s == 60.0
    assert saved["falls"].keys() == {"transfer", "scratch"} and "The scratch side" in \
        (tmp_path / "c" / "curve.html").read_text()


def test_curve_cli_prints_the_table_and_the_sentence(learnable_csv, tiny_bert_name, tmp_path):
    result = runner.invoke(app, ["curve", str(learnable_csv), "--backbone", tiny_bert_name, "--sizes", "4,all",
                                 "--seeds", "1", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "c" / "curve.json").read_text())
    assert saved["sentence"] in result.stdout and "transfer" in result.stdout


@pytest.mark.parametrize("args, expected", [(["--sizes", "4,lots"], "--sizes"), (["--sizes", "1,all"], "--sizes"),
                                            (["--backbone", "effnet-lite0"], "--backbone")])
def test_curve_errors_are_one_line_with_exit_code_2(learnable_csv, tmp_path, args, expected):
    result = runner.invoke(app, ["curve", str(learnable_csv), *args, "--out", str(tmp_path / "c")])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()


@requires_effnet
def test_image_curve_trains_the_cnn_and_the_probe(image_folder):
    curve = headstart.curve(image_folder, sizes=[3, ALL], seeds=1, image_size=64)
    assert "pixel LR" in curve.scratch_method and len(curve.rows) == 2
    assert curve.rows[-1]["transfer"] >= 0.6  # colours are easy for ImageNet features
    every = curve.rows[-1]["scratch_candidates"]  # 3 a class holds nothing out; all labels hold out a fifth
    assert [c["name"] for c in every] == ["pixel-lr", "mlp", "cnn"]
    tried = [c for c in every if "val_accuracy" in c]
    best = max(c["val_accuracy"] for c in tried)
    assert curve.rows[-1]["scratch_model"] in [c["name"] for c in tried if c["val_accuracy"] == best]
