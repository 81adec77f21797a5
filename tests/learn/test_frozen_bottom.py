"""The frozen bottom of a fine-tune: where a backbone can be cut, and that the cut changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import headstart
from headstart.backbones import create_backbone
from headstart.learn.config import FinetuneConfig
from headstart.learn.finetune import finetune
from headstart.learn.frozen_bottom import frozen_bottom
from headstart.learn.head import LinearHead


@pytest.fixture(scope="module")
def effnet():
    backbone = create_backbone("effnet-lite0", pretrained=False, image_size=32)
    backbone.module.eval()
    return backbone


# Networks timm cuts between its children: plain convolutions, depthwise ones with fused norm-acts,
# and stages that are not a stack of blocks (a RegNet's s1..s4).
TIMM_CUTS = {"timm:resnet18": [1, 2, 3, 4], "timm:efficientnet_b0": [1, 4, 7], "timm:regnety_002": [1, 3, 4]}


@pytest.fixture(scope="module", params=sorted(TIMM_CUTS))
def timm_net(request):
    backbone = create_backbone(request.param, pretrained=False, image_size=32)
    backbone.module.eval()
    return backbone


def _pixels(n: int = 3, size: int = 32) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 3, size, size), dtype=np.uint8))


@pytest.mark.parametrize("n_bottom", [1, 2, 3, 4])
def test_effnet_cut_anywhere_gives_the_whole_networks_features(effnet, n_bottom):
    bottom, top = effnet.split(n_bottom)
    with torch.no_grad():
        whole = effnet.module(pixels=_pixels())
        cut = top.eval()(hidden=bottom.eval()(pixels=_pixels()))
    torch.testing.assert_close(cut, whole, rtol=1e-5, atol=1e-5)


def test_timm_cut_between_its_children_gives_the_whole_networks_features(timm_net):
    for n_bottom in TIMM_CUTS[timm_net.name]:
        bottom, top = timm_net.split(n_bottom)
        with torch.no_grad():
            cut = top.eval()(hidden=bottom.eval()(pixels=_pixels()))
        torch.testing.assert_close(cut, timm_net.module(pixels=_pixels()), rtol=1e-5, atol=1e-5)


def _param_ids(modules) -> set[int]:
    return {id(p) for module in modules for p in module.parameters()}


@pytest.mark.parametrize("n_bottom", [1, 3, 4])
def test_effnet_bottom_and_top_hold_exactly_their_groups(effnet, n_bottom):
    groups = effnet.layer_groups()
    bottom, top = effnet.split(n_bottom)
    assert _param_ids([bottom]) == _param_ids(groups[:n_bottom])
    assert _param_ids([top]) == _param_ids(groups[n_bottom:])


def test_timm_bottom_holds_its_groups_and_top_the_rest(timm_net):
    groups = timm_net.layer_groups()
    bottom, top = timm_net.split(2)
    assert _param_ids([bottom]) == _param_ids(groups[:2])
    assert _param_ids([top]) == _param_ids([timm_net.module]) - _param_ids(groups[:2])


def test_no_cut_where_nothing_or_everything_would_be_frozen(effnet, timm_net):
    # Groups the top keeps at least: the last blocks, and the head convolution where it is a group
    # of its own (timm puts it with the last stage).
    top_groups = {"effnet-lite0": 2, "timm:efficientnet_b0": 1, "timm:resnet18": 1, "timm:regnety_002": 1}
    for backbone in (effnet, timm_net):
        groups = len(backbone.layer_groups())
        assert backbone.split(0) is None and backbone.split(groups) is None
        most = groups - top_groups[backbone.name]
        assert backbone.split(most) is not None and backbone.split(most + 1) is None
    assert frozen_bottom(effnet, 0) is None


def test_no_cut_where_the_children_do_not_run_in_order():
    vit = create_backbone("timm:vit_tiny_patch16_224", pretrained=False)  # position embeddings come between
    assert len(vit.layer_groups()) > 2 and vit.split(2) is None


def test_onnx_bottom_equals_eager(effnet, tmp_path):
    onnx_bottom, _, engine = frozen_bottom(effnet, 3, engine="onnx", cache_dir=tmp_path)
    torch_bottom, _, torch_engine = frozen_bottom(effnet, 3, engine="torch")
    assert (engine, torch_engine) == ("onnx", "torch")
    inputs = {"pixels": _pixels(5)}
    torch.testing.assert_close(onnx_bottom(inputs), torch_bottom(inputs), rtol=1e-4, atol=1e-4)
    assert list((tmp_path / "onnx").glob("*-bottom3.onnx")), "the export is kept for the next fine-tune"


def test_eager_bottom_runs_in_inference_mode_whatever_training_set(effnet):
    bottom_fn, top, _ = frozen_bottom(effnet, 3, engine="torch")
    effnet.module.train()  # what fine-tuning does before each stage
    try:
        inputs = {"pixels": _pixels(4)}
        first, second = bottom_fn(inputs), bottom_fn(inputs)
        torch.testing.assert_close(first, second)  # no dropped connections, no batch statistics
        assert top.training, "the top keeps its training mode"
    finally:
        effnet.module.eval()


@pytest.mark.parametrize("name", ["effnet-lite0", "timm:resnet18"])
def test_finetune_through_the_cut_trains_only_the_top(tmp_path, write_images, name):
    backbone = create_backbone(name, pretrained=False, image_size=32)
    data = headstart.prepare(write_images(tmp_path / "images", per_class=4), seed=0)
    train, val = data.split("train"), data.split("val")
    classes = train.classes
    groups = backbone.layer_groups()
    before = [[p.detach().clone() for p in group.parameters()] for group in groups]
    head = LinearHead(np.zeros((len(classes), backbone.feature_dim), np.float32), np.zeros(len(classes), np.float32))
    resolved = FinetuneConfig(epochs=2, unfreeze=2, batch_size=4).resolved(backbone, len(train), len(classes))
    _, history = finetune(backbone, train, val, classes, head, resolved, seed=0, cache_dir=tmp_path / "cache")
    assert [row["frozen_bottom"] for row in history] == ["onnx", "onnx"]
    changed = [any(not torch.equal(a, b) for a, b in zip(old, group.parameters()))
               for old, group in zip(before, groups)]
    assert changed == [False] * (len(groups) - 2) + [True, True]
