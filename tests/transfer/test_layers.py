"""Which layers transfer: pooled layer-group features, probes, the recommended depth, fit's auto-unfreeze."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import headstart
from headstart.backbones import create_backbone
from headstart.cli import app
from headstart.transfer.layers import _pool, layer_features, recommend_unfreeze

requires_effnet = pytest.mark.requires_effnet
runner = CliRunner()


def test_recommend_unfreeze():
    assert recommend_unfreeze([0.5, 0.6, 0.7]) == 1            # the top is best: tune the top group only
    assert recommend_unfreeze([0.5, 0.9, 0.6, 0.55]) == 2      # best in group 1: re-train groups 2 and 3
    assert recommend_unfreeze([0.8, 0.805, 0.7]) == 1          # near-ties go to the higher group
    assert recommend_unfreeze([None, 0.9, 0.5]) == 1


def test_pool_handles_images_tokens_and_tuples():
    assert _pool(torch.ones(2, 5, 3, 3), None).shape == (2, 5)
    tokens = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert _pool((tokens,), torch.tensor([[1, 1, 0]])).item() == pytest.approx(2.0)  # padding left out
    assert _pool(tokens, None).item() == pytest.approx(104 / 3)


def test_top_group_features_are_the_backbones_own_features(tiny_bert_name):
    backbone = create_backbone(tiny_bert_name)
    texts = ["the team and the coach", "spicy soup", "a new laptop with a very old battery today"]
    feats = layer_features(backbone, texts, batch_size=2)
    assert len(feats) == len(backbone.layer_groups()) == 3  # embeddings + two groups of two layers
    assert all(f.shape == (3, 32) for f in feats)
    np.testing.assert_allclose(feats[-1], backbone.embed(texts).numpy(), atol=1e-5)
    assert not np.allclose(feats[0], feats[-1])


def test_layers_api_and_cli(learnable_csv, tiny_bert_name, tmp_path):
    report = headstart.layers(learnable_csv, backbone=tiny_bert_name, out=tmp_path / "l")
    assert len(report.accuracies) == 3 and all(0 <= a <= 1 for a in report.accuracies)
    assert report.unfreeze == recommend_unfreeze(report.accuracies) and report.freeze + report.unfreeze == 3
    saved = json.loads((tmp_path / "l" / "layers.json").read_text())
    assert saved["accuracies"] == report.accuracies and (tmp_path / "l" / "layers.png").exists()
    result = runner.invoke(app, ["layers", str(learnable_csv), "--backbone", tiny_bert_name, "--out",
                                 str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert "group 2:" in result.stdout and "recommended: fine-tune the top" in result.stdout


def test_fit_auto_unfreeze_uses_the_recommended_depth(learnable_csv, tiny_bert_name, tmp_path):
    model = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="finetune", auto_unfreeze=True,
                          baseline=False, finetune_config=headstart.FinetuneConfig(epochs=1, strategy="staged"))
    config = model.info["config"]
    assert config["finetune"]["unfreeze"] == config["layers"]["unfreeze"]
    assert len(config["layers"]["accuracies"]) == 3


@requires_effnet
def test_effnet_layer_groups_all_give_features(image_folder):
    backbone = create_backbone("effnet-lite0", image_size=64)
    items = [str(p) for p in sorted(image_folder.rglob("*.png"))[:4]]
    feats = layer_features(backbone, items)
    assert len(feats) == len(backbone.layer_groups()) and all(f is not None and len(f) == 4 for f in feats)
    assert feats[-1].shape[1] == backbone.feature_dim
