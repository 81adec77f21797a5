"""A fine-tuned backbone is saved in its own library's layout: transformers, sentence-transformers and
timm load it without headstart, and the model folder still loads and predicts the same."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from headstart.backbones import create_backbone
from headstart.learn.head import LinearHead
from headstart.model import Model

TEXTS = ["the coach and the team win the match", "spicy pasta and a sweet sauce", "my laptop screen"]


def _nudged(backbone, seed: int = 1):
    """``backbone`` with every weight moved a little, as fine-tuning would: the registry cannot rebuild it."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in backbone.module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return backbone


def _model(backbone, classes=("food", "sports", "tech"), **options) -> Model:
    rng = np.random.default_rng(0)
    head = LinearHead(rng.normal(0, 0.5, (len(classes), backbone.feature_dim)).astype(np.float32),
                      np.zeros(len(classes), np.float32))
    return Model(backbone, head, classes, backbone_options=options, finetuned=True)


def test_a_finetuned_text_backbone_loads_with_transformers_and_sentence_transformers(finetune_run):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    model, folder = finetune_run
    backbone = model.backbone
    inputs = backbone.preprocess(TEXTS)
    with torch.no_grad():
        expected = backbone.module.encoder(**inputs).last_hidden_state
        encoder = AutoModel.from_pretrained(folder / "backbone").eval()
        np.testing.assert_allclose(encoder(**inputs).last_hidden_state, expected, atol=1e-5)
    tokenizer = AutoTokenizer.from_pretrained(folder / "backbone")
    assert tokenizer(TEXTS, padding=True)["input_ids"] == inputs["input_ids"].tolist()
    encoded = SentenceTransformer(str(folder / "backbone"), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(encoded, backbone.embed(TEXTS).numpy(), atol=1e-5)


def test_a_finetuned_sentence_transformer_keeps_its_pooling_and_normalization(tiny_st_name, tmp_path):
    from sentence_transformers import SentenceTransformer

    backbone = _nudged(create_backbone(tiny_st_name, max_length=32))
    assert backbone.module.normalize
    model = _model(backbone, max_length=32)
    expected = model.predict_proba(TEXTS, engine="torch")
    folder = model.save(tmp_path / "tuned")
    assert json.loads((folder / "config.json").read_text())["backbone"]["name"] == "st:./backbone"
    assert not (folder / "backbone.safetensors").exists()

    encoded = SentenceTransformer(str(folder / "backbone"), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(np.linalg.norm(encoded, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(encoded, backbone.embed(TEXTS).numpy(), atol=1e-5)

    loaded = Model.load(folder)
    assert loaded.backbone.fingerprint() == backbone.fingerprint() and loaded.backbone.max_length == 32
    np.testing.assert_allclose(loaded.predict_proba(TEXTS, engine="torch"), expected, atol=1e-6)


def test_a_finetuned_timm_backbone_loads_with_timm(image_folder, tmp_path):
    import timm

    backbone = _nudged(create_backbone("timm:resnet18", pretrained=False, image_size=32))
    model = _model(backbone, ("blue", "dark", "red"), image_size=32)
    paths = [str(p) for p in sorted(image_folder.rglob("*.png"))[::5]]
    expected = model.predict_proba(paths, engine="torch")
    folder = model.save(tmp_path / "tuned")
    weights = folder / "backbone" / "model.safetensors"
    config = json.loads((folder / "backbone" / "config.json").read_text())
    assert config["architecture"] == "resnet18" and config["num_classes"] == 0
    assert config["pretrained_cfg"]["mean"] and not (folder / "backbone.safetensors").exists()

    pixels = backbone.preprocess(paths)["pixels"]
    normalized = pixels.float() * backbone.module.scale + backbone.module.shift
    for net in (timm.create_model("resnet18", pretrained=True, num_classes=0,
                                  pretrained_cfg_overlay=dict(file=str(weights))),
                timm.create_model(f"local-dir:{folder / 'backbone'}", pretrained=True)):
        with torch.no_grad():
            np.testing.assert_allclose(net.eval()(normalized), backbone.module(pixels=pixels), atol=1e-5)

    loaded = Model.load(folder)
    assert loaded.backbone.fingerprint() == backbone.fingerprint()
    np.testing.assert_allclose(loaded.predict_proba(paths, engine="torch"), expected, atol=1e-6)


@pytest.mark.requires_effnet
def test_a_finetuned_efficientnet_lite_loads_with_its_library(image_folder, tmp_path):
    from efficientnet_lite_pytorch import EfficientNet
    from safetensors.torch import load_file

    backbone = _nudged(create_backbone("effnet-lite0", image_size=64))
    model = _model(backbone, ("blue", "dark", "red"), image_size=64)
    paths = [str(p) for p in sorted(image_folder.rglob("*.png"))[::5]]
    expected = model.predict_proba(paths, engine="torch")
    folder = model.save(tmp_path / "tuned")
    config = json.loads((folder / "backbone" / "config.json").read_text())
    assert config["architecture"] == "efficientnet-lite0" and config["num_classes"] == 0

    net = EfficientNet.from_name(config["architecture"], image_size=config["pretrained_cfg"]["input_size"][-1])
    net._fc = torch.nn.Identity()
    net.load_state_dict(load_file(str(folder / "backbone" / "model.safetensors")))
    torch.testing.assert_close(net.state_dict(), backbone.module.net.state_dict())

    loaded = Model.load(folder)
    np.testing.assert_allclose(loaded.predict_proba(paths, engine="torch"), expected, atol=1e-6)


def test_a_model_folder_without_its_finetuned_weights_is_a_model_error(tmp_path):
    from headstart.errors import ModelError

    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=32)
    folder = _model(backbone, ("blue", "dark", "red"), image_size=32).save(tmp_path / "tuned")
    (folder / "backbone" / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelError, match="fine-tuned weights"):
        Model.load(folder)


def test_a_folder_saved_before_the_layout_still_loads(image_folder, tmp_path):
    """Older folders held the module's state dict in backbone.safetensors beside config.json."""
    import shutil

    from safetensors.torch import save_file

    backbone = _nudged(create_backbone("timm:resnet18", pretrained=False, image_size=32))
    model = _model(backbone, ("blue", "dark", "red"), image_size=32)
    paths = [str(p) for p in sorted(image_folder.rglob("*.png"))[::5]]
    folder = model.save(tmp_path / "old")
    shutil.rmtree(folder / "backbone")
    save_file({k: v.contiguous() for k, v in backbone.module.state_dict().items()}, str(folder / "backbone.safetensors"))
    np.testing.assert_allclose(Model.load(folder).predict_proba(paths, engine="torch"),
                               model.predict_proba(paths, engine="torch"), atol=1e-6)


def test_a_finetuned_timm_model_loads_where_the_hub_weights_cannot_be_downloaded(image_folder, tmp_path):
    """Its own weights replace the hub's, so loading does not fetch those (the tests run with HF_HUB_OFFLINE=1)."""
    backbone = _nudged(create_backbone("timm:resnet18", pretrained=False, image_size=32))
    backbone.pretrained = True  # as if tuned from the hub's ImageNet weights, which this machine lacks
    model = _model(backbone, ("blue", "dark", "red"), image_size=32)
    paths = [str(p) for p in sorted(image_folder.rglob("*.png"))[::5]]
    loaded = Model.load(model.save(tmp_path / "tuned"))
    assert loaded.backbone.pretrained and loaded.backbone.fingerprint() == backbone.fingerprint()
    np.testing.assert_allclose(loaded.predict_proba(paths, engine="torch"), model.predict_proba(paths, engine="torch"),
                               atol=1e-6)


@pytest.mark.requires_minilm
def test_a_finetuned_registry_text_backbone_names_where_it_began(tmp_path):
    backbone = _nudged(create_backbone("minilm-l6"))
    model = _model(backbone, ("neg", "pos"))
    folder = model.save(tmp_path / "tuned")
    described = json.loads((folder / "config.json").read_text())["backbone"]
    assert described["name"] == "st:./backbone" and described["finetuned_from"] == "minilm-l6"
    assert described["normalize"] is True and (folder / "backbone" / "2_Normalize").is_dir()
    np.testing.assert_allclose(Model.load(folder).predict_proba(TEXTS, engine="torch"),
                               model.predict_proba(TEXTS, engine="torch"), atol=1e-6)
