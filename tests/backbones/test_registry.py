"""The backbone registry: names, modalities, the hf:/st:/timm: prefixes, layer groups, fingerprints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from headstart.backbones import backbone_modality, create_backbone, list_backbones
from headstart.backbones import registry
from headstart.errors import BackboneError, HeadstartError
from headstart.features.extract import compute_features

TEXTS = ["the team won the match", "spicy pasta with cheese", "the team won the match", "a new laptop screen"]


# -- names ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bert-huge", "hf:", "timm:", "huggingface:bert", "MiniLM-L6"])
def test_unknown_name_names_the_option_and_lists_the_known_ones(name):
    with pytest.raises(BackboneError) as caught:
        create_backbone(name)
    message = str(caught.value)
    assert message.startswith("--backbone: ")
    assert f"'{name}'" in message
    known = [entry.name for entry in list_backbones()]
    assert {"minilm-l6", "mpnet-base", "effnet-lite0"} <= set(known)
    for entry in known:
        assert entry in message
    assert "st:<id or folder>" in message and "timm:<name>" in message
    assert isinstance(caught.value, HeadstartError)


def test_backbone_modality_without_loading(monkeypatch):
    def must_not_load(*args, **kwargs):
        raise AssertionError("backbone_modality loaded a model")

    monkeypatch.setattr(registry.text, "load_transformers", must_not_load)
    monkeypatch.setattr(registry.text, "load_sentence_transformer", must_not_load)
    monkeypatch.setattr(registry.image, "timm_model", must_not_load)
    for name in ("minilm-l6", "mpnet-base"):
        assert backbone_modality(name) == "text"
    for name in ("effnet-lite0", "effnet-lite1", "effnet-lite2", "timm:resnet18"):
        assert backbone_modality(name) == "image"
    assert backbone_modality("hf:/some/folder") == backbone_modality("st:org/model") == "text"
    assert {e.name for e in list_backbones("image")} == {"effnet-lite0", "effnet-lite1", "effnet-lite2"}
    assert [e.name for e in list_backbones("text")] == ["minilm-l6", "mpnet-base"]
    with pytest.raises(BackboneError, match="--backbone"):
        backbone_modality("resnet-9000")


# -- text backbones from local folders -------------------------------------------------------------

def test_hf_folder_loads_with_mean_pooled_unnormalized_features(tiny_bert_backbone, tiny_bert_folder):
    backbone = tiny_bert_backbone
    assert backbone.name == f"hf:{tiny_bert_folder}"
    assert backbone.modality == "text"
    assert backbone.feature_dim == 32
    assert backbone.input_names == ("input_ids", "attention_mask")
    features = backbone.embed(TEXTS).numpy()
    assert features.shape == (4, 32) and features.dtype == np.float32
    np.testing.assert_array_equal(features[0], features[2])  # identical texts, identical features
    assert np.abs(features[0] - features[1]).max() > 1e-3
    assert np.abs(features[1] - features[3]).max() > 1e-3
    assert not np.allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-3)  # hf: is not normalized
    # Batch composition (padding) does not change an item's features.
    alone = backbone.embed([TEXTS[1]]).numpy()
    np.testing.assert_allclose(alone[0], features[1], atol=1e-5)
    # Mean pooling over the real tokens, checked against the encoder's own output.
    with torch.no_grad():
        batch = backbone.tokenizer([TEXTS[3]], return_tensors="pt")
        hidden = backbone.module.encoder(**batch).last_hidden_state
    np.testing.assert_allclose(features[3], hidden[0].mean(0).numpy(), atol=1e-5)


def test_st_folder_loads_normalized_and_matches_sentence_transformers(tiny_st_name, tiny_st_folder,
                                                                       tiny_bert_backbone):
    from sentence_transformers import SentenceTransformer

    backbone = create_backbone(tiny_st_name)
    assert backbone.feature_dim == 32
    assert backbone.module.pooling == "mean" and backbone.module.normalize is True
    features = backbone.embed(TEXTS).numpy()
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(features[0], features[2])
    assert np.abs(features[0] - features[1]).max() > 1e-3
    reference = SentenceTransformer(str(tiny_st_folder), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(features, reference, atol=1e-5)
    # Same weights as the hf: folder, so the st: features are its features, L2-normalized.
    plain = tiny_bert_backbone.embed(TEXTS).numpy()
    np.testing.assert_allclose(features, plain / np.linalg.norm(plain, axis=1, keepdims=True), atol=1e-5)


def test_text_layer_groups_cover_the_encoder_bottom_to_top(tiny_bert_backbone):
    encoder = tiny_bert_backbone.module.encoder
    groups = tiny_bert_backbone.layer_groups()
    assert groups[0] is encoder.embeddings
    layers = [layer for group in groups[1:] for layer in group]
    assert len(layers) == 4
    assert all(a is b for a, b in zip(layers, encoder.encoder.layer))  # every layer, in order
    assert len(groups) == 3  # embeddings + two layers a group
    grouped = [id(p) for group in groups for p in group.parameters()]
    assert len(grouped) == len(set(grouped))  # no parameter in two groups
    expected = {id(p) for name, p in encoder.named_parameters() if not name.startswith("pooler.")}
    assert set(grouped) == expected  # every parameter the features depend on is in a group


def test_missing_folder_is_a_backbone_error_naming_it():
    for name in ("hf:/nonexistent/folder", "st:/nonexistent/folder"):
        with pytest.raises(BackboneError) as caught:
            create_backbone(name)
        message = str(caught.value)
        assert "/nonexistent/folder" in message
        assert "\n" not in message


# -- timm ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_pngs(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("pngs")
    paths = []
    for i, colour in enumerate([(220, 30, 30), (20, 40, 200)]):
        path = folder / f"{i}.png"
        Image.new("RGB", (32, 32), colour).save(path)
        paths.append(str(path))
    return paths


def test_timm_random_init_gives_num_features_dims(two_pngs):
    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=64)
    assert backbone.name == "timm:resnet18" and backbone.modality == "image"
    assert backbone.pretrained is False and backbone.describe()["pretrained"] is False
    assert backbone.feature_dim == backbone.module.net.num_features == 512
    assert backbone.preprocess(two_pngs)["pixels"].shape == (2, 3, 64, 64)
    features = compute_features(backbone, two_pngs)
    assert features.shape == (2, 512)
    assert np.isfinite(features).all()
    assert np.abs(features[0] - features[1]).max() > 1e-4
    # the stem (conv1 and bn1 together) and the four stages, input to output
    groups = backbone.layer_groups()
    net = backbone.module.net
    assert list(groups[0]) == [net.conv1, net.bn1] and groups[-1] is net.layer4
    assert len(groups) == 5


def test_timm_layer_groups_are_timms_own_and_hold_every_parameter_once():
    # Stages named s1..s4 (RegNet) and parameters held outside any block (a ViT's class token and
    # position embeddings) are grouped as timm's layer decay groups them.
    regnet = create_backbone("timm:regnety_002", pretrained=False, image_size=32)
    vit = create_backbone("timm:vit_tiny_patch16_224", pretrained=False)
    for backbone, n_groups in ((regnet, 5), (vit, 13)):  # the stem, then each stage or block
        groups = backbone.layer_groups()
        held = [{id(p) for p in group.parameters()} for group in groups]
        assert len(groups) == n_groups
        assert sum(map(len, held)) == len(set().union(*held)) == len(list(backbone.module.parameters()))
    assert regnet.layer_groups()[1] is regnet.module.net.s1
    net = vit.module.net
    assert {id(net.cls_token), id(net.pos_embed)} <= {id(p) for p in vit.layer_groups()[0].parameters()}


def test_timm_feature_dim_matches_the_output_of_a_model_with_a_head_conv():
    backbone = create_backbone("timm:mobilenetv3_small_050", pretrained=False, image_size=32)
    with torch.no_grad():
        output = backbone.module.eval()(torch.zeros(1, 3, 32, 32))
    # compute_features then fails: "could not broadcast (2,1024) into (2,288)"
    assert output.shape == (1, backbone.feature_dim)


def test_an_image_size_a_timm_model_cannot_take_is_a_backbone_error():
    with pytest.raises(BackboneError, match=r"timm:vit_tiny_patch16_224.*64x64.*leave --image-size out.*224 px"):
        create_backbone("timm:vit_tiny_patch16_224", pretrained=False, image_size=64)


def test_unknown_timm_model_is_a_backbone_error():
    with pytest.raises(BackboneError, match="timm:no_such_net"):
        create_backbone("timm:no_such_net", pretrained=False)


# -- fingerprints --------------------------------------------------------------------------------

def test_fingerprint_follows_weights_and_preprocessing(tiny_bert_name, tiny_bert_backbone):
    same = create_backbone(tiny_bert_name)
    assert same.fingerprint() == tiny_bert_backbone.fingerprint()
    assert create_backbone(tiny_bert_name, max_length=16).fingerprint() != same.fingerprint()

    changed = create_backbone(tiny_bert_name)
    with torch.no_grad():
        changed.module.encoder.encoder.layer[3].output.dense.bias[0] += 1e-3
    assert changed.fingerprint() != same.fingerprint()

    small = create_backbone("timm:resnet18", pretrained=False, image_size=64)
    state = small.module.state_dict()
    other_size = create_backbone("timm:resnet18", pretrained=False, image_size=96)
    other_size.module.load_state_dict(state)
    assert other_size.fingerprint() != small.fingerprint()
    same_size = create_backbone("timm:resnet18", pretrained=False, image_size=64)
    assert same_size.fingerprint() != small.fingerprint()  # another random init
    same_size.module.load_state_dict(state)
    assert same_size.fingerprint() == small.fingerprint()


def test_a_kept_fingerprint_still_sees_every_change_of_the_weights(tiny_bert_name):
    """The hash is kept between calls; an optimizer step, a loaded state and a swapped tensor after a
    first call each give another fingerprint, and loading the first weights back gives the first."""
    backbone = create_backbone(tiny_bert_name)
    first, weights = backbone.fingerprint(), {k: v.clone() for k, v in backbone.module.state_dict().items()}
    assert backbone.fingerprint() == first

    optimizer = torch.optim.SGD(backbone.module.parameters(), lr=0.1)
    backbone.module(**backbone.preprocess(["a few words"])).sum().backward()
    optimizer.step()
    stepped = backbone.fingerprint()
    assert stepped != first

    backbone.module.load_state_dict(weights)
    assert backbone.fingerprint() == first

    bias = backbone.module.encoder.encoder.layer[0].output.dense.bias
    bias.data = bias.data + 1e-3
    assert backbone.fingerprint() not in (first, stepped)


def test_fingerprint_of_a_backbone_changed_in_place(tiny_bert_name):
    # Regression: a memoized fingerprint made a backbone fine-tuned in place read the ONNX export of its
    # weights before fine-tuning, so fit reported the metrics of the old encoder with the new head.
    backbone = create_backbone(tiny_bert_name)
    before = backbone.fingerprint()
    with torch.no_grad():
        backbone.module.encoder.encoder.layer[3].output.dense.bias[0] += 1.0
    assert backbone.fingerprint() != before


# -- image preprocessing ---------------------------------------------------------------------------

def test_eval_resize_keeps_small_images_whole_and_center_crops_photos():
    from headstart.backbones.image import EvalResize

    resize = EvalResize(32)
    small = torch.zeros(3, 16, 16)
    small[:, :, 0] = 1.0  # a mark on the left edge: kept when the whole image is stretched
    assert resize(small).shape == (3, 32, 32)
    assert resize(small)[:, :, 0].mean() > 0.5
    photo = torch.zeros(3, 256, 256)
    photo[:, :, :8] = 1.0  # an edge band that the 0.875 center crop cuts away
    cropped = resize(photo)
    assert cropped.shape == (3, 32, 32)
    assert cropped.max() == 0.0


def test_text_preprocess_cuts_a_huge_text_before_tokenizing(tiny_bert_backbone, monkeypatch):
    """The tokenizer reads a whole text before truncating it: a text given directly (not through a
    data reader) is cut to MAX_TEXT_CHARS first."""
    from headstart.data.dataset import MAX_TEXT_CHARS

    tokenizer = tiny_bert_backbone.tokenizer
    seen = []

    def recording(texts, **options):
        seen.extend(len(text) for text in texts)
        return tokenizer(texts, **options)

    monkeypatch.setattr(tiny_bert_backbone, "tokenizer", recording)
    batch = tiny_bert_backbone.preprocess(["team " * (MAX_TEXT_CHARS // 2), "soup"])
    assert seen == [MAX_TEXT_CHARS, 4]
    assert batch["input_ids"].shape[1] == tiny_bert_backbone.max_length


# -- what each named backbone needs installed -------------------------------------------------------

def test_each_named_backbone_names_the_extra_that_installs_its_packages():
    import tomllib

    from headstart.backbones import backbone_entry

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    core = {requirement.split(">")[0].split("=")[0].strip() for requirement in project["dependencies"]}
    extras = project["optional-dependencies"]
    for entry in list_backbones():
        assert entry.packages and entry.extra in extras, entry.name
        assert set(entry.packages) <= core | set(extras[entry.extra]), entry.name
    # the default set-up (the models extra) carries three image candidates and the light text one
    assert {e.name for e in list_backbones() if e.extra == "models"} == {"minilm-l6", "effnet-lite0", "effnet-lite1",
                                                                        "effnet-lite2"}
    assert backbone_entry("mpnet-base").extra == "models-large" and backbone_entry("st:some/model") is None
    sizes = {name: create_backbone(name, pretrained=False).image_size for name in ("effnet-lite1", "effnet-lite2")}
    assert sizes == {"effnet-lite1": 240, "effnet-lite2": 260}  # their native input sizes


def test_missing_packages_are_found_without_importing_them():
    entry = registry.BackboneEntry("x", "text", lambda: None, "x", packages=("numpy", "headstart-no-such-weights"),
                                   extra=None)
    assert entry.missing_packages() == ["headstart-no-such-weights"]
    assert entry.install_command() == "pip install headstart-no-such-weights"
    with_extra = registry.BackboneEntry("y", "text", lambda: None, "y", packages=("numpy",), extra="models-large")
    assert with_extra.missing_packages() == []
    assert with_extra.install_command() == "pip install 'headstart[models-large]'"
