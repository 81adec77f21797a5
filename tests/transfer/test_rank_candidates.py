"""Ranking's candidates: one that fails is reported and skipped, a missing one names its extra, the guide is printed.

The unit tests swap the registry for tiny entries (a tiny BERT that loads, one whose loader raises,
one whose package is not installed); the integration test ranks the default install's image
candidates on 60 images.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import headstart
from headstart.backbones import create_backbone, registry
from headstart.cli import app
from headstart.errors import BackboneError
from headstart.transfer.rank import rank_backbones
from headstart.transfer.rank_guide import FINETUNED_OVER_PROBE

requires_effnet_lite012 = pytest.mark.requires_effnet_lite012

runner = CliRunner()
ABSENT_PACKAGE = "headstart-test-weights-that-are-not-installed"


@pytest.fixture
def tiny_registry(monkeypatch, tiny_bert_name):
    """A registry of three text entries: ``tiny-ok`` loads, ``tiny-broken`` raises, ``tiny-absent`` is not installed."""

    def tiny(**_options):
        backbone = create_backbone(tiny_bert_name)
        backbone.name = "tiny-ok"  # as a registered loader names its backbone
        return backbone

    def broken(**_options):
        raise RuntimeError("the weights file is truncated\nsecond line of the traceback text")

    def absent(**_options):
        raise ImportError("No module named 'headstart_test_weights'")

    entries = {}
    monkeypatch.setattr(registry, "_REGISTRY", entries)
    registry.register_backbone("tiny-ok", "text", tiny, "a tiny BERT")
    registry.register_backbone("tiny-broken", "text", broken, "a loader that raises")
    registry.register_backbone("tiny-absent", "text", absent, "weights in a package that is not installed",
                               packages=(ABSENT_PACKAGE,), extra="models-large")
    return entries


def test_a_failing_and_a_missing_candidate_are_skipped_with_their_reason(tiny_registry, learnable_csv, tmp_path):
    ranking = headstart.rank(learnable_csv, out=tmp_path / "r")
    assert [r["backbone"] for r in ranking.rows] == ["tiny-ok"]
    skipped = {s["backbone"]: s for s in ranking.skipped}
    assert set(skipped) == {"tiny-broken", "tiny-absent"}
    # the error's type and first line, not the traceback's other lines
    assert skipped["tiny-broken"]["reason"] == "failed to load: RuntimeError: the weights file is truncated"
    absent = skipped["tiny-absent"]
    assert absent["reason"].startswith(f"not installed (needs {ABSENT_PACKAGE};")
    assert absent["install"] == "pip install 'headstart[models-large]'" and absent["missing"] == [ABSENT_PACKAGE]
    assert "1 candidate, 2 skipped" in ranking.sentence()
    saved = json.loads((tmp_path / "r" / "ranking.json").read_text())
    assert {s["backbone"] for s in saved["skipped"]} == {"tiny-broken", "tiny-absent"}
    html = (tmp_path / "r" / "ranking.html").read_text()
    assert "Skipped tiny-broken: failed to load" in html and "headstart[models-large]" in html


def test_rank_cli_prints_skipped_candidates_the_guide_and_the_predicted_accuracy(tiny_registry, learnable_csv,
                                                                                tmp_path):
    result = runner.invoke(app, ["rank", str(learnable_csv), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Skipped tiny-broken: failed to load: RuntimeError: the weights file is truncated" in out
    assert "Skipped tiny-absent: not installed" in out and "pip install 'headstart[models-large]' adds it" in out
    guide = next(line for line in out.splitlines() if line.startswith("How to read it:"))
    assert "hscore orders the candidates" in guide and "not an accuracy" in guide
    low, high = FINETUNED_OVER_PROBE
    assert f"Predicted accuracy: probe {100 * low:+.1f} to {100 * high:+.1f} points" in out
    assert "predicted accuracy" in out.splitlines()[0]  # the table's column
    row = json.loads((tmp_path / "cli" / "ranking.json").read_text())["rows"][0]
    assert row["predicted_accuracy"] == [pytest.approx(min(1.0, row["probe"] + low)),
                                         pytest.approx(min(1.0, row["probe"] + high))]


def test_a_chosen_candidate_that_fails_is_skipped_too(tiny_registry, learnable_csv):
    ranking = headstart.rank(learnable_csv, ["tiny-broken", "tiny-ok"])
    assert [r["backbone"] for r in ranking.rows] == ["tiny-ok"]
    assert [s["backbone"] for s in ranking.skipped] == ["tiny-broken"]


def test_when_no_candidate_loads_the_error_gives_every_reason(tiny_registry, learnable_csv, tmp_path):
    with pytest.raises(BackboneError) as caught:
        headstart.rank(learnable_csv, ["tiny-broken", "tiny-absent"])
    message = str(caught.value)
    assert "tiny-broken: failed to load: RuntimeError" in message and "headstart[models-large]" in message
    result = runner.invoke(app, ["rank", str(learnable_csv), "--backbones", "tiny-broken",
                                 "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and "the weights file is truncated" in result.stderr
    assert not (tmp_path / "none").exists()  # nothing half-written


def test_a_candidate_that_fails_while_scoring_is_skipped(tiny_registry, learnable_csv, tiny_bert_name, tmp_path):
    from headstart.data.prepare import prepare

    train = prepare(learnable_csv, seed=0).split("train")
    failing = create_backbone(tiny_bert_name)
    failing.name = "tiny-failing"

    def preprocess(*_args, **_kwargs):
        raise ValueError("tokenizer exploded")

    failing.preprocess = preprocess
    # a cache of its own: features cached by another test would never call preprocess
    ranking = rank_backbones(train, [failing, "tiny-ok"], cache_dir=tmp_path / "cache")
    assert [r["backbone"] for r in ranking.rows] == ["tiny-ok"]
    assert ranking.skipped == [{"backbone": "tiny-failing",
                                "reason": "failed while scoring: ValueError: tokenizer exploded"}]


@requires_effnet_lite012
def test_the_default_install_ranks_three_image_candidates(write_images, tmp_path):
    images = write_images(tmp_path / "images", per_class=20)  # 60 images, 42 in the training split
    result = runner.invoke(app, ["rank", str(images), "--out", str(tmp_path / "rank")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "rank" / "ranking.json").read_text())
    assert {r["backbone"] for r in saved["rows"]} == {"effnet-lite0", "effnet-lite1", "effnet-lite2"}
    assert saved["skipped"] == [] and saved["n_items"] == 42
    assert "(3 candidates, 42 training items" in result.stdout and "How to read it:" in result.stdout
    params = {r["backbone"]: r["params"] for r in saved["rows"]}
    assert params["effnet-lite0"] < params["effnet-lite1"] < params["effnet-lite2"]  # three models, not one thrice
    assert all(r["probe"] > 0.8 for r in saved["rows"])  # colour classes are easy for ImageNet features
