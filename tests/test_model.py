"""The model folder: what it holds, save -> load round trips, and saves that fail or must not happen."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

import headstart
from headstart import model as model_module
from headstart.backbones import create_backbone
from headstart.data import read_dataset
from headstart.errors import ModelError
from headstart.learn.probe import LinearHead
from headstart.model import FORMAT, Model

TEXTS = ["the coach and the team win the match", "spicy pasta and a sweet sauce", "my laptop screen",
         "a phone with a new battery", "bread and cheese soup", "ball"]


def _listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


# -- what the folder holds -------------------------------------------------------------------------

def test_folder_contents(probe_run, learnable_csv):
    model, folder = probe_run
    names = set(_listing(folder))
    assert {"head.safetensors", "config.json", "labels.json", "metrics.json", "manifest.json", "report.html",
            "history.json"} <= names
    assert "backbone.safetensors" not in names  # a probe leaves the backbone as the registry builds it
    assert not [n for n in names if n.startswith(".")]

    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == FORMAT and config["modality"] == "text" and config["mode"] == "probe"
    assert config["classes"] == ["food", "sports", "tech"] and config["finetuned"] is False
    # The tiny BERT is a local folder (hf:<folder>): the model folder carries a copy of it.
    assert config["backbone"]["name"] == "hf:./backbone" and config["backbone"]["feature_dim"] == 32
    assert (folder / "backbone" / "config.json").is_file()
    assert json.loads((folder / "labels.json").read_text()) == ["food", "sports", "tech"]

    metrics = json.loads((folder / "metrics.json").read_text())
    assert isinstance(metrics["accuracy"], float) and isinstance(metrics["macro_f1"], float)
    assert 0.0 <= metrics["macro_f1"] <= 1.0 and metrics["accuracy"] == pytest.approx(model.metrics["accuracy"])
    assert metrics["n"] == config["counts"]["test"]

    manifest = json.loads((folder / "manifest.json").read_text())
    assert "test" not in manifest  # the test split is rebuilt from the data, seed and ratios
    for package in ("headstart", "torch", "transformers", "numpy", "scikit-learn", "onnxruntime"):
        assert manifest["versions"][package], package
    assert manifest["versions"]["headstart"] == headstart.__version__
    expected_hash = headstart.prepare(learnable_csv, seed=0).content_hash()
    assert manifest["data_hash"] == expected_hash and len(expected_hash) == 64
    assert manifest["seed"] == 0

    head = load_file(str(folder / "head.safetensors"))
    assert head["weight"].shape == (3, 32) and head["bias"].shape == (3,)
    np.testing.assert_array_equal(head["weight"], model.head.weight)
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "accuracy" in html.lower()


def test_finetuned_folder_holds_the_backbone_weights_once(finetune_run, tiny_bert_folder):
    """In the sentence-transformers layout of backbone/, which the folder's config names: no second copy."""
    model, folder = finetune_run
    assert not (folder / "backbone.safetensors").exists()
    config = json.loads((folder / "config.json").read_text())
    assert config["finetuned"] is True and config["mode"] == "finetune"
    assert config["backbone"]["name"] == "st:./backbone"
    # Tuned from a local folder (hf:<path>): no path of this machine is recorded as its origin.
    assert "finetuned_from" not in config["backbone"] and str(tiny_bert_folder) not in json.dumps(config)
    assert [p.name for p in folder.rglob("*.safetensors") if p.parent.name == "backbone"] == ["model.safetensors"]
    weights = load_file(str(folder / "backbone" / "model.safetensors"))
    state = model.backbone.module.encoder.state_dict()
    assert set(weights) == set(state)
    for key in weights:
        np.testing.assert_array_equal(weights[key], state[key].numpy())


# -- round trips -------------------------------------------------------------------------------------

def test_probe_save_load_gives_identical_predictions(probe_run, learnable_csv):
    model, folder = probe_run
    loaded = Model.load(folder)
    assert loaded.classes == model.classes and loaded.finetuned is False
    assert loaded.metrics == json.loads((folder / "metrics.json").read_text())
    assert loaded.backbone.fingerprint() == model.backbone.fingerprint()
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), model.predict_proba(TEXTS), atol=1e-6)
    dataset = read_dataset(learnable_csv)
    np.testing.assert_allclose(loaded.predict_proba(dataset), model.predict_proba(dataset), atol=1e-6)
    assert loaded.predict(TEXTS) == model.predict(TEXTS)


def test_finetune_save_load_gives_identical_predictions(finetune_run, tiny_bert_name):
    model, folder = finetune_run
    loaded = headstart.load(folder)
    assert loaded.finetuned is True
    # The fine-tuned weights were loaded, not the registry's.
    fresh = create_backbone(tiny_bert_name)
    assert loaded.backbone.fingerprint() != fresh.fingerprint()
    assert loaded.backbone.fingerprint() == model.backbone.fingerprint()
    torch_loaded = loaded.predict_proba(TEXTS, engine="torch")
    np.testing.assert_allclose(torch_loaded, model.predict_proba(TEXTS, engine="torch"), atol=1e-5)
    # Each engine gives the same: the ONNX export is of the fine-tuned weights.
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), torch_loaded, atol=1e-4)
    np.testing.assert_allclose(model.predict_proba(TEXTS), torch_loaded, atol=1e-4)


def test_fit_metrics_are_those_of_the_saved_model(finetune_run, learnable_csv):
    """The test metrics fit reports are what the saved model scores on the same test split."""
    from headstart.evaluate import classification_metrics

    model, folder = finetune_run
    test_set = headstart.prepare(learnable_csv, seed=0).split("test")
    loaded = headstart.load(folder)
    metrics = classification_metrics(test_set.label_ids(loaded.classes), loaded.predict_proba(test_set),
                                     loaded.classes)
    assert metrics["accuracy"] == pytest.approx(model.metrics["accuracy"])
    assert metrics["ece"] == pytest.approx(model.metrics["ece"], abs=1e-5)


def test_random_init_backbone_survives_save_load(image_folder, tmp_path):
    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=32)
    rng = np.random.default_rng(0)
    head = LinearHead(rng.normal(0, 0.1, (3, 512)).astype(np.float32), np.zeros(3, np.float32))
    model = Model(backbone, head, ["blue", "dark", "red"], backbone_options={"image_size": 32})
    paths = [str(p) for p in sorted(image_folder.rglob("*.png"))[::5]]
    loaded = Model.load(model.save(tmp_path / "random"))
    np.testing.assert_allclose(loaded.predict_proba(paths), model.predict_proba(paths), atol=1e-5)


def test_finetuned_image_models_average_each_image_with_its_mirror(image_folder, tmp_path):
    from PIL import Image

    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=40)  # larger than the files: no off-centre crop
    rng = np.random.default_rng(0)
    head = LinearHead(rng.normal(0, 0.1, (3, 512)).astype(np.float32), np.zeros(3, np.float32))
    paths = [str(p) for p in sorted(image_folder.rglob("*.png"))[::5]]
    mirrors = []
    for i, path in enumerate(paths):
        mirrors.append(str(tmp_path / f"mirror_{i}.png"))
        Image.open(path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrors[-1])
    frozen = Model(backbone, head, ["blue", "dark", "red"], backbone_options={"image_size": 40})
    tuned = Model(backbone, head, ["blue", "dark", "red"], backbone_options={"image_size": 40}, finetuned=True)
    assert tuned.sees_mirror_images and not frozen.sees_mirror_images
    plain, flipped = frozen.features(paths, engine="torch"), frozen.features(mirrors, engine="torch")
    assert np.abs(plain - flipped).max() > 1e-3, "a random network sees an image and its mirror apart"
    np.testing.assert_allclose(tuned.features(paths, engine="torch"), (plain + flipped) / 2, atol=1e-5)


def test_a_model_of_images_that_must_not_be_mirrored_predicts_from_the_image_alone(image_folder, tmp_path):
    options = {"image_size": 40, "mirror": False}
    backbone = create_backbone("timm:resnet18", pretrained=False, **options)
    rng = np.random.default_rng(0)
    head = LinearHead(rng.normal(0, 0.1, (3, 512)).astype(np.float32), np.zeros(3, np.float32))
    paths = [str(p) for p in sorted(image_folder.rglob("*.png"))[::5]]
    tuned = Model(backbone, head, ["blue", "dark", "red"], backbone_options=options, finetuned=True)
    loaded = Model.load(tuned.save(tmp_path / "unmirrored"))
    assert not tuned.sees_mirror_images and not loaded.sees_mirror_images
    plain = Model(backbone, head, ["blue", "dark", "red"], backbone_options=options).features(paths, engine="torch")
    np.testing.assert_allclose(loaded.features(paths, engine="torch"), plain, atol=1e-5)


def test_one_text_is_one_item_not_one_per_character(probe_run):
    model, _ = probe_run
    text = TEXTS[0]
    proba = model.predict_proba(text)
    assert proba.shape == (1, len(model.classes))  # was (36, 3): one row per character
    np.testing.assert_allclose(proba, model.predict_proba([text]), atol=1e-6)
    assert model.predict(text) == model.predict([text]) and len(model.predict(text)) == 1


def test_one_image_path_is_one_item_as_a_str_or_a_path(image_folder):
    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=32)
    rng = np.random.default_rng(0)
    head = LinearHead(rng.normal(0, 0.1, (3, 512)).astype(np.float32), np.zeros(3, np.float32))
    model = Model(backbone, head, ["blue", "dark", "red"], backbone_options={"image_size": 32})
    path = sorted(image_folder.rglob("*.png"))[0]
    expected = model.predict_proba([str(path)], engine="torch")
    for one in (path, str(path)):
        np.testing.assert_allclose(model.predict_proba(one, engine="torch"), expected, atol=1e-6)
        assert model.predict(one, engine="torch") == [model.classes[int(expected.argmax())]]


@pytest.mark.parametrize("prefix", ["hf", "st"])
def test_a_model_folder_copied_elsewhere_loads_without_the_backbone_folder(prefix, tiny_bert_folder, tiny_st_folder,
                                                                           tmp_path, monkeypatch):
    """A backbone read from a folder travels inside the model folder: copied to another machine (here:
    the original backbone folder removed, another working directory), the model predicts the same."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(tiny_bert_folder if prefix == "hf" else tiny_st_folder, work / "encoders" / "tiny")
    monkeypatch.chdir(work)
    backbone = create_backbone(f"{prefix}:encoders/tiny")  # relative to the working directory, as people type it
    rng = np.random.default_rng(0)
    head = LinearHead(rng.normal(0, 0.5, (3, 32)).astype(np.float32), np.zeros(3, np.float32))
    model = Model(backbone, head, ["food", "sports", "tech"], backbone_options={"max_length": 32})
    model.save(work / "runs" / "tiny")
    expected = model.predict_proba(TEXTS, engine="torch")

    elsewhere = tmp_path / "other-machine"
    shutil.copytree(work / "runs" / "tiny", elsewhere / "tiny")
    shutil.rmtree(work)
    monkeypatch.chdir(elsewhere)
    config_text = (elsewhere / "tiny" / "config.json").read_text()
    assert str(tmp_path) not in config_text and "encoders/tiny" not in config_text
    assert json.loads(config_text)["backbone"]["name"] == f"{prefix}:./backbone"
    loaded = Model.load("tiny")
    np.testing.assert_allclose(loaded.predict_proba(TEXTS, engine="torch"), expected, atol=1e-6)
    assert loaded.backbone.max_length == 32

    shutil.rmtree(elsewhere / "tiny" / "backbone")
    with pytest.raises(ModelError, match="copy of its backbone is missing"):
        Model.load("tiny")


@pytest.mark.requires_minilm
def test_a_packaged_backbone_is_stored_by_its_registry_name_not_a_path(tmp_path):
    backbone = create_backbone("minilm-l6")
    head = LinearHead(np.zeros((2, 384), np.float32), np.zeros(2, np.float32))
    folder = Model(backbone, head, ["neg", "pos"]).save(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    assert config["backbone"]["name"] == "minilm-l6" and "/" not in config["backbone"]["source"]
    assert not (folder / "backbone").exists()


# -- saves that must not happen, or fail half-way --------------------------------------------------------

def test_existing_folder_that_is_not_a_model_is_refused(probe_run, tmp_path):
    model, _ = probe_run
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.txt").write_text("do not delete")
    before = _listing(tmp_path)
    with pytest.raises(ModelError) as caught:
        model.save(out)
    assert str(out) in str(caught.value)
    with pytest.raises(ModelError):
        headstart.api.save(model, out)  # with the report
    assert _listing(tmp_path) == before  # nothing written, nothing left beside it
    assert (out / "thesis.txt").read_text() == "do not delete"


def test_an_existing_file_as_out_is_a_model_error(probe_run, tmp_path):
    model, _ = probe_run
    target = tmp_path / "model.txt"
    target.write_text("not a folder")
    with pytest.raises(ModelError):
        model.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.txt"]


def test_saving_over_a_model_folder_replaces_it(probe_run, tmp_path):
    model, _ = probe_run
    out = tmp_path / "model"
    model.save(out)
    (out / "stale.txt").write_text("from the old model")
    headstart.api.save(model, out)
    assert "stale.txt" not in _listing(out) and (out / "report.html").is_file()
    assert _listing(tmp_path) == ["model"] + [f"model/{n}" for n in _listing(out)]


def test_a_failure_during_save_leaves_no_partial_folder(probe_run, tmp_path, monkeypatch):
    model, _ = probe_run
    real = model_module.write_json

    def failing(path, value):
        if path.name == "manifest.json":
            raise OSError(28, "No space left on device")
        real(path, value)

    monkeypatch.setattr(model_module, "write_json", failing)
    with pytest.raises(OSError, match="No space"):
        model.save(tmp_path / "new")
    assert _listing(tmp_path) == []

    # Over an existing model: the old one stays whole.
    monkeypatch.undo()
    model.save(tmp_path / "old")
    listing = _listing(tmp_path)
    saved = {name: (tmp_path / "old" / name).read_bytes() for name in _listing(tmp_path / "old")
             if (tmp_path / "old" / name).is_file()}
    monkeypatch.setattr(model_module, "write_json", failing)
    with pytest.raises(OSError):
        headstart.api.save(model, tmp_path / "old")
    assert _listing(tmp_path) == listing
    assert {name: (tmp_path / "old" / name).read_bytes() for name in saved} == saved
    monkeypatch.undo()
    assert Model.load(tmp_path / "old").classes == model.classes


# -- loading what is not a model --------------------------------------------------------------------------

def test_loading_a_folder_without_config_is_a_model_error(tmp_path):
    (tmp_path / "head.safetensors").write_bytes(b"")
    with pytest.raises(ModelError) as caught:
        Model.load(tmp_path)
    assert str(tmp_path) in str(caught.value) and "config.json" in str(caught.value)
    with pytest.raises(ModelError):
        headstart.load(tmp_path / "missing")


def test_loading_an_incomplete_or_foreign_folder_is_a_model_error(probe_run, finetune_run, tmp_path):
    import shutil

    _, probe_folder = probe_run
    _, finetune_folder = finetune_run
    no_head = shutil.copytree(probe_folder, tmp_path / "no_head")
    (no_head / "head.safetensors").unlink()
    with pytest.raises(ModelError, match="head"):
        Model.load(no_head)
    no_backbone = shutil.copytree(finetune_folder, tmp_path / "no_backbone")
    (no_backbone / "backbone" / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="fine-tuned weights"):
        Model.load(no_backbone)
    other = shutil.copytree(probe_folder, tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "format": "somebody-else/3"}))
    with pytest.raises(ModelError, match="format"):
        Model.load(other)


def test_the_manifest_names_the_data_and_a_separate_test_file_absolutely(learnable_csv, tiny_bert_name, tmp_path,
                                                                         monkeypatch):
    import csv

    rows = list(csv.DictReader(open(learnable_csv)))
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    for path, part in ((train, rows[: len(rows) * 3 // 4]), (test, rows[len(rows) * 3 // 4:])):
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(part)
    monkeypatch.chdir(tmp_path)  # given relative to the folder the fit ran in, found from any other
    model = headstart.fit("train.csv", test="test.csv", backbone=tiny_bert_name, mode="probe", baseline=False)
    # the split rebuilt from `data` holds no test item: whoever re-measures needs the file
    assert model.info["manifest"]["test"] == str(test.absolute())
    assert model.info["manifest"]["data"] == str(train.absolute())
