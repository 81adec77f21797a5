"""Ranking backbones: the API, the CLI, the Pareto front, the files written, the errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.errors import HeadstartError
from headstart.transfer.rank import pareto_front, source_probabilities, stratified_subset
from headstart.transfer.scores import SCORES

requires_effnet = pytest.mark.requires_effnet

runner = CliRunner()


def test_pareto_front_keeps_the_undominated_points():
    # (cost, accuracy): b is dominated by a (cheaper and better); c costs more but is the best.
    assert pareto_front([1.0, 2.0, 5.0], [0.8, 0.7, 0.9]) == [True, False, True]
    assert pareto_front([1.0, 1.0], [0.5, 0.5]) == [True, True]  # equal points dominate neither


def test_stratified_subset_keeps_every_class_in_its_share():
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    keep = stratified_subset(labels, 100, seed=0)
    assert np.bincount(labels[keep]).tolist() == [90, 9, 2]
    assert stratified_subset(labels, 5000, seed=0).tolist() == list(range(1000))


def test_source_probabilities_come_from_the_kept_classifier():
    class Fake:
        source_classifier = torch.nn.Linear(3, 5)

    proba = source_probabilities(Fake(), np.ones((4, 3), dtype=np.float32))
    assert proba.shape == (4, 5) and np.allclose(proba.sum(1), 1.0)
    assert source_probabilities(object(), np.ones((4, 3))) is None


def test_rank_scores_every_candidate_and_sorts_by_the_chosen_score(learnable_csv, tiny_bert_name, tiny_st_name,
                                                                  tmp_path):
    ranking = headstart.rank(learnable_csv, [tiny_bert_name, tiny_st_name], score="hscore", out=tmp_path / "r")
    assert [r["backbone"] for r in ranking.rows] == sorted([tiny_bert_name, tiny_st_name],
                                                           key=lambda n: -next(r["hscore"] for r in ranking.rows
                                                                               if r["backbone"] == n))
    for row in ranking.rows:
        assert row["leep"] is None  # text backbones have no source classes
        assert all(isinstance(row[s], float) for s in SCORES if s != "leep")
        assert row["params"] > 1000 and row["feature_dim"] == 32 and row["ms_per_item"] > 0
    assert any(r["pareto"] for r in ranking.rows)
    assert ranking.n_items == 63  # the 70% train split of 90 rows
    saved = json.loads((tmp_path / "r" / "ranking.json").read_text())
    assert saved["score"] == "hscore" and [r["backbone"] for r in saved["rows"]] == [r["backbone"]
                                                                                    for r in ranking.rows]
    assert (tmp_path / "r" / "ranking.png").read_bytes()[:4] == b"\x89PNG"
    html = (tmp_path / "r" / "ranking.html").read_text()
    assert "Pareto" in html and "data:image/png;base64," in html


def test_rank_cli_prints_the_table_and_writes_the_files(learnable_csv, tiny_bert_name, tiny_st_name, tmp_path):
    out = tmp_path / "cli-rank"
    result = runner.invoke(app, ["rank", str(learnable_csv), "--backbones", f"{tiny_bert_name},{tiny_st_name}",
                                 "--out", str(out), "--max-items", "30"])
    assert result.exit_code == 0, result.output
    assert "hscore" in result.stdout and "Best by hscore" in result.stdout  # the default score
    saved = json.loads((out / "ranking.json").read_text())
    assert saved["n_items"] == 30
    assert result.stdout.index(saved["rows"][0]["backbone"]) < result.stdout.index(saved["rows"][1]["backbone"])


def test_rank_errors_are_one_line_with_exit_code_2(learnable_csv, tmp_path):
    result = runner.invoke(app, ["rank", str(learnable_csv), "--backbones", "effnet-lite0", "--out",
                                 str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "--backbones" in result.stderr and "text" in result.stderr
    result = runner.invoke(app, ["rank", str(learnable_csv), "--score", "magic"])
    assert result.exit_code == 2 and "--score" in result.stderr
    with pytest.raises(HeadstartError, match="unknown backbone"):
        headstart.rank(learnable_csv, ["no-such-backbone"])


@requires_effnet
def test_rank_effnet_gives_leep_from_its_imagenet_classifier(image_folder, tmp_path):
    ranking = headstart.rank(image_folder, ["effnet-lite0"], score="leep", image_size=64)
    row = ranking.rows[0]
    assert row["leep"] is not None and row["leep"] <= 0
    assert row["probe"] > 0.8  # colour classes are easy for ImageNet features
