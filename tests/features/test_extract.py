"""Frozen features: ONNX equals eager PyTorch, the engine choice, and the on-disk feature cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headstart.backbones import create_backbone
from headstart.data.dataset import text_hash
from headstart.features import extract
from headstart.features.cache import FeatureCache
from headstart.features.extract import cached_features, compute_features, forward_function

# Lengths from 1 to ~20 tokens, so that batches need padding.
TEXTS = ["goal", "the coach and the team", "spicy soup with bread and a sweet sauce today",
         "laptop", "my new phone has a really old battery and the screen was very dark",
         "we bake bread", "cloud server code", "they win the league this season with the ball",
         "pasta", "a pixel on a robot chip",
         # far longer than the sentences the export was traced with: the token axis must be dynamic
         " ".join(["the coach said the team will win the league with a new player this season"] * 6)]


def _eager_images(backbone, paths) -> np.ndarray:
    """Reference image features: the module called positionally on the preprocessed pixels."""
    backbone.module.eval()
    with torch.no_grad():
        return backbone.module(backbone.preprocess(paths)["pixels"]).numpy()


@pytest.fixture
def spy(monkeypatch):
    """Records the number of items of every compute_features call that cached_features makes."""
    calls: list[list[str]] = []
    real = extract.compute_features

    def counting(backbone, items, **options):
        calls.append(list(items))
        return real(backbone, items, **options)

    monkeypatch.setattr(extract, "compute_features", counting)
    return calls


# -- ONNX vs eager ---------------------------------------------------------------------------------

def test_onnx_equals_eager_for_the_tiny_bert(tiny_bert_backbone, tmp_path):
    _, engine = forward_function(tiny_bert_backbone, "onnx", tmp_path)
    assert engine == "onnx"
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 1
    onnx = compute_features(tiny_bert_backbone, TEXTS, engine="onnx", batch_size=3, cache_dir=tmp_path)
    eager = tiny_bert_backbone.embed(TEXTS).numpy()
    assert onnx.shape == (len(TEXTS), 32) and onnx.dtype == np.float32
    np.testing.assert_allclose(onnx, eager, atol=1e-4, rtol=0)
    assert np.abs(eager).max() > 0.1  # the comparison is not between zeros


def test_torch_engine_equals_embed_and_keeps_item_order(tiny_bert_backbone, tmp_path):
    _, engine = forward_function(tiny_bert_backbone, "torch", tmp_path)
    assert engine == "torch"
    assert not (tmp_path / "onnx").exists()  # the torch engine exports nothing
    features = compute_features(tiny_bert_backbone, TEXTS, engine="torch", batch_size=4)
    eager = tiny_bert_backbone.embed(TEXTS).numpy()
    np.testing.assert_allclose(features, eager, atol=1e-5, rtol=0)
    # Length-sorted batches are put back in item order.
    reversed_features = compute_features(tiny_bert_backbone, TEXTS[::-1], engine="torch", batch_size=4)
    np.testing.assert_allclose(reversed_features[::-1], features, atol=1e-5, rtol=0)


def test_onnx_equals_eager_for_timm_resnet18(image_folder, tmp_path):
    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=64)
    paths = [str(p) for p in sorted(image_folder.rglob("*.png"))[::6]]
    onnx = compute_features(backbone, paths, engine="onnx", batch_size=4, cache_dir=tmp_path)
    eager = _eager_images(backbone, paths)
    assert onnx.shape == (len(paths), 512)
    np.testing.assert_allclose(onnx, eager, atol=1e-4, rtol=0)


def test_torch_engine_for_a_timm_backbone(image_folder):
    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=32)
    paths = [str(p) for p in sorted(image_folder.rglob("*.png"))[:3]]
    features = compute_features(backbone, paths, engine="torch")
    np.testing.assert_allclose(features, _eager_images(backbone, paths), atol=1e-5)


def test_auto_falls_back_to_torch_when_export_fails(tiny_bert_backbone, tmp_path, monkeypatch):
    def broken_export(backbone, path):
        raise RuntimeError("exporter cannot handle this model")

    monkeypatch.setattr(extract, "export_onnx", broken_export)
    _, engine = forward_function(tiny_bert_backbone, "auto", tmp_path)
    assert engine == "torch"
    features = compute_features(tiny_bert_backbone, TEXTS[:3], engine="auto", cache_dir=tmp_path)
    np.testing.assert_allclose(features, tiny_bert_backbone.embed(TEXTS[:3]).numpy(), atol=1e-5)
    with pytest.raises(RuntimeError, match="exporter"):
        forward_function(tiny_bert_backbone, "onnx", tmp_path)
    with pytest.raises(ValueError, match="engine"):
        forward_function(tiny_bert_backbone, "gpu", tmp_path)


def test_freshly_tuned_weights_extract_few_items_eagerly_and_many_through_onnx(tiny_bert_backbone, tmp_path,
                                                                               monkeypatch):
    exports, real_export = [], extract.export_onnx
    monkeypatch.setattr(extract, "export_onnx", lambda *a, **k: exports.append(1) or real_export(*a, **k))
    monkeypatch.setitem(extract.ONNX_PAYS_FROM, "text", 4)
    few = compute_features(tiny_bert_backbone, TEXTS[:3], cache_dir=tmp_path, tuned=True)
    assert exports == [] and not list(tmp_path.rglob("*.onnx"))  # 3 items: the export would not pay
    np.testing.assert_allclose(few, tiny_bert_backbone.embed(TEXTS[:3]).numpy(), atol=1e-6)
    compute_features(tiny_bert_backbone, TEXTS[:3], cache_dir=tmp_path)  # pretrained weights: the cache's engine
    assert len(exports) == 1
    many = compute_features(tiny_bert_backbone, TEXTS[:5], cache_dir=tmp_path / "other", tuned=True)
    assert len(exports) == 2  # 5 items: exported
    np.testing.assert_allclose(many, tiny_bert_backbone.embed(TEXTS[:5]).numpy(), atol=1e-5)


# -- the cache -------------------------------------------------------------------------------------

def test_cache_computes_only_what_is_missing(tiny_bert_backbone, tmp_path, spy):
    backbone = tiny_bert_backbone
    first_items = TEXTS[:7]
    first = cached_features(backbone, first_items, [text_hash(t) for t in first_items], engine="torch",
                            cache_dir=tmp_path)
    assert [len(c) for c in spy] == [7]
    np.testing.assert_allclose(first, backbone.embed(first_items).numpy(), atol=1e-5)
    cache = FeatureCache(tmp_path, backbone.fingerprint())
    assert len(cache) == 7
    assert len(list(cache.folder.glob("shard-*.npz"))) == 1

    # Same items again, plus three new ones in between: only the three are computed.
    spy.clear()
    items = TEXTS[7:8] + first_items + TEXTS[8:10]
    second = cached_features(backbone, items, [text_hash(t) for t in items], engine="torch", cache_dir=tmp_path)
    assert len(spy) == 1 and sorted(spy[0]) == sorted(TEXTS[7:10])
    np.testing.assert_array_equal(second[1:8], first)  # read back, not recomputed
    np.testing.assert_allclose(second, backbone.embed(items).numpy(), atol=1e-5)
    assert len(list(cache.folder.glob("shard-*.npz"))) == 2

    # A new cache object (a new run) reads all ten; nothing is computed.
    spy.clear()
    assert len(FeatureCache(tmp_path, backbone.fingerprint())) == 10
    third = cached_features(backbone, items, [text_hash(t) for t in items], engine="torch", cache_dir=tmp_path)
    assert spy == []
    np.testing.assert_array_equal(third, second)
    # No temporary files are left behind.
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".") or ".tmp" in p.name]
    assert leftovers == []
    assert (cache.folder / "backbone.json").is_file()


def test_duplicates_are_computed_once(tiny_bert_backbone, tmp_path, spy):
    items = [TEXTS[0], TEXTS[1], TEXTS[0], TEXTS[2], TEXTS[1], TEXTS[0]]
    features = cached_features(tiny_bert_backbone, items, [text_hash(t) for t in items], engine="torch",
                               cache_dir=tmp_path)
    assert spy == [[TEXTS[0], TEXTS[1], TEXTS[2]]]
    assert features.shape == (6, 32)
    np.testing.assert_array_equal(features[0], features[2])
    np.testing.assert_array_equal(features[0], features[5])
    np.testing.assert_array_equal(features[1], features[4])
    assert len(FeatureCache(tmp_path, tiny_bert_backbone.fingerprint())) == 3


def test_cache_is_keyed_by_backbone(tiny_bert_name, tiny_bert_backbone, tmp_path, spy):
    hashes = [text_hash(t) for t in TEXTS[:4]]
    cached_features(tiny_bert_backbone, TEXTS[:4], hashes, engine="torch", cache_dir=tmp_path)
    shorter = create_backbone(tiny_bert_name, max_length=4)  # other settings: other features
    truncated = cached_features(shorter, TEXTS[:4], hashes, engine="torch", cache_dir=tmp_path)
    assert [len(c) for c in spy] == [4, 4]
    np.testing.assert_allclose(truncated, shorter.embed(TEXTS[:4]).numpy(), atol=1e-5)
    assert len(list((tmp_path / "features").iterdir())) == 2


def test_cache_uses_the_environment_folder(tiny_bert_backbone, session_cache, monkeypatch, tmp_path):
    from headstart.paths import default_cache_dir

    assert default_cache_dir() == session_cache
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path / "elsewhere"))
    cached_features(tiny_bert_backbone, TEXTS[:2], [text_hash(t) for t in TEXTS[:2]], engine="torch")
    assert len(FeatureCache(tmp_path / "elsewhere", tiny_bert_backbone.fingerprint())) == 2


# -- the packaged pretrained backbones (acceptance: ONNX equals eager within 1e-4) ------------------

@pytest.mark.requires_minilm
def test_minilm_onnx_equals_eager(tmp_path):
    backbone = create_backbone("minilm-l6")
    assert backbone.feature_dim == 384
    texts = ["A gripping, beautifully shot film.", "The plot makes no sense and the acting is wooden.",
             "ok", "What time does the museum open on Sundays, and is there parking nearby?"]
    onnx = compute_features(backbone, texts, engine="onnx")  # the session's cache: exported once
    eager = backbone.embed(texts).numpy()
    np.testing.assert_allclose(onnx, eager, atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(eager, axis=1), 1.0, atol=1e-5)


@pytest.mark.requires_minilm
@pytest.mark.requires_shared_data
def test_minilm_onnx_equals_eager_on_sst2(shared_data):
    from headstart.data import read_dataset

    dataset = read_dataset(shared_data / "text" / "sst2_dev.csv")
    texts = dataset.items[:24]
    backbone = create_backbone("minilm-l6")
    onnx = compute_features(backbone, texts, engine="onnx", batch_size=8)
    np.testing.assert_allclose(onnx, backbone.embed(texts).numpy(), atol=1e-4, rtol=0)


@pytest.mark.requires_effnet
def test_effnet_lite0_onnx_equals_eager(tmp_path):
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        base = np.linspace(0, 255, 96)[None, :, None] * rng.uniform(0.2, 1.0, size=(1, 1, 3))
        pixels = np.clip(base + rng.normal(0, 25, size=(96, 96, 3)), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels, "RGB")
        ImageDraw.Draw(image).ellipse([10 + 10 * i, 20, 60 + 10 * i, 80], fill=tuple(int(v) for v in
                                                                                      rng.integers(0, 255, 3)))
        image.save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    backbone = create_backbone("effnet-lite0")
    assert backbone.pretrained and backbone.feature_dim == 1280
    onnx = compute_features(backbone, paths, engine="onnx", cache_dir=tmp_path / "cache")
    eager = backbone.embed(paths).numpy()
    np.testing.assert_allclose(onnx, eager, atol=1e-4, rtol=0)
    assert np.abs(eager).max() > 0.1
