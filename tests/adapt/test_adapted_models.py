"""``fit --target``: an adapted model saves, loads, predicts the same and exports; bad targets are one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import headstart
from headstart.adapt.adabn import batch_norm_layers
from headstart.adapt.target import MIN_TARGET_ITEMS
from headstart.cli import app
from headstart.exported.graph import graph_inputs


def _check_round_trip(model, folder, items, tmp_path):
    loaded = headstart.load(folder)
    np.testing.assert_allclose(loaded.predict_proba(items), model.predict_proba(items), atol=1e-5)
    exported = headstart.load(headstart.export(folder, tmp_path / "exported"))
    np.testing.assert_allclose(exported.predict_proba(items), model.predict_proba(items), atol=1e-4)
    return loaded


@pytest.mark.parametrize("method", ["prior", "coral", "self-train", "coral-self-train"])
def test_a_text_model_adapted_by_its_head_saves_loads_predicts_and_exports(method, learnable_csv, write_csv,
                                                                           tiny_bert_name, tmp_path):
    target = write_csv(tmp_path / "target.csv", n_per_class=15, seed=7)
    folder = tmp_path / "model"
    model = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="probe", out=folder, target=target,
                          adapt=method, baseline=False)
    adaptation = model.metrics["adaptation"]
    assert adaptation["method"] == method and adaptation["requested"] == method
    assert adaptation["target_items"] == 45 and 0 <= adaptation["domain_auc"] <= 1
    plain = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="probe", baseline=False)
    assert not np.array_equal(model.head.bias, plain.head.bias) or not np.array_equal(model.head.weight,
                                                                                      plain.head.weight)
    items = headstart.data.read_dataset(target).items[:12]
    loaded = _check_round_trip(model, folder, items, tmp_path)
    assert loaded.metrics["adaptation"]["method"] == method
    assert "Adapted to" in (folder / "report.html").read_text(encoding="utf-8")


def test_auto_records_its_choice_and_reason(learnable_csv, write_csv, tiny_bert_name, tmp_path):
    target = write_csv(tmp_path / "target.csv", n_per_class=15, seed=8)
    model = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="probe", target=target, baseline=False)
    adaptation = model.metrics["adaptation"]
    assert adaptation["requested"] == "auto"
    assert adaptation["method"] in ("none", "coral-self-train")
    assert adaptation["reason"].startswith(adaptation["method"] if adaptation["method"] != "none" else "no adaptation")


@pytest.mark.requires_effnet
def test_an_adabn_model_carries_the_target_statistics_through_save_load_and_export(image_folder, write_images,
                                                                                    tmp_path):
    target = write_images(tmp_path / "target", per_class=12, seed=3)
    for picture in target.rglob("*.png"):  # a darker target: its batch-norm statistics differ
        from PIL import Image

        Image.fromarray((np.asarray(Image.open(picture)) * 0.5).astype(np.uint8)).save(picture)
    folder = tmp_path / "model"
    model = headstart.fit(image_folder, mode="probe", image_size=32, out=folder, target=target, adapt="adabn",
                          baseline=False)
    assert model.metrics["adaptation"]["method"] == "adabn"
    assert model.finetuned and not model.sees_mirror_images  # its head learned unmirrored features
    pretrained = headstart.backbones.create_backbone("effnet-lite0", image_size=32)
    adapted_means = [layer.running_mean for layer in batch_norm_layers(model.backbone.module)]
    original_means = [layer.running_mean for layer in batch_norm_layers(pretrained.module)]
    assert not all(torch.equal(a, b) for a, b in zip(adapted_means, original_means))
    items = [str(p) for p in sorted(target.rglob("*.png"))[:8]]
    loaded = headstart.load(folder)
    np.testing.assert_allclose(loaded.predict_proba(items), model.predict_proba(items), atol=1e-5)
    exported = headstart.load(headstart.export(folder, tmp_path / "exported"))
    # The graph is fed headstart's own preprocessing: the export's resize may differ from it by one pixel
    # level, which statistics of 36 near-uniform synthetic images amplify (real images do not).
    feed = graph_inputs(model.backbone, model.backbone.preprocess(items))
    np.testing.assert_allclose(exported.session.run(None, feed)[0], model.predict_proba(items), atol=1e-4)
    for a, b in zip(batch_norm_layers(loaded.backbone.module), batch_norm_layers(model.backbone.module)):
        assert torch.equal(a.running_mean, b.running_mean) and torch.equal(a.running_var, b.running_var)


# -- bad input: one line, exit 2, before any training --------------------------------------------------------

runner = CliRunner()


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _other_modality(tmp_path, text_csv, image_folder):
    return ["--target", image_folder], ["target", "image"]


def _empty(tmp_path, text_csv, image_folder):
    return ["--target", _write(tmp_path / "empty.csv", "text\n")], ["empty.csv"]


def _too_small(tmp_path, text_csv, image_folder):
    rows = "".join(f"sentence number {i}\n" for i in range(5))
    return ["--target", _write(tmp_path / "small.csv", "text\n" + rows)], ["5 items", f"at least {MIN_TARGET_ITEMS}"]


def _unknown_method(tmp_path, text_csv, image_folder):
    return ["--target", text_csv("target.csv"), "--adapt", "magic"], ["--adapt", "magic"]


def _method_without_target(tmp_path, text_csv, image_folder):
    return ["--adapt", "coral"], ["--target"]


def _adabn_without_batch_norm(tmp_path, text_csv, image_folder):
    return ["--target", text_csv("target.csv"), "--adapt", "adabn"], ["batch-norm", "text"]


BAD_TARGETS = [_other_modality, _empty, _too_small, _unknown_method, _method_without_target, _adabn_without_batch_norm]


@pytest.mark.parametrize("case", BAD_TARGETS, ids=[case.__name__.strip("_") for case in BAD_TARGETS])
def test_a_bad_target_is_one_line_and_exit_code_2(case, tmp_path, text_csv, image_folder, tiny_bert_name,
                                                  monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started before the target was checked")

    monkeypatch.setattr("headstart.api.train", no_training)
    args, expected = case(tmp_path, text_csv, image_folder)
    out = tmp_path / "out"
    result = runner.invoke(app, [str(a) for a in ["fit", text_csv(), "--backbone", tiny_bert_name, *args,
                                                  "--out", out]])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for part in expected:
        assert part in lines[0], (part, lines[0])
    assert not out.exists()


def test_self_training_a_fine_tuned_model_tunes_its_backbone_on_pseudo_labels(learnable_csv, write_csv,
                                                                              tiny_bert_name, tmp_path):
    target = write_csv(tmp_path / "target.csv", n_per_class=15, seed=9)
    folder = tmp_path / "model"
    model = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="finetune", out=folder, target=target,
                          adapt="self-train", baseline=False,
                          finetune_config=headstart.FinetuneConfig(epochs=1, strategy="staged"))
    adaptation = model.metrics["adaptation"]
    assert adaptation["method"] == "self-train" and model.finetuned
    assert 0 < adaptation["pseudo_labeled"] < 45 and len(adaptation["history"]) == 1
    items = headstart.data.read_dataset(target).items[:10]
    np.testing.assert_allclose(headstart.load(folder).predict_proba(items), model.predict_proba(items), atol=1e-5)
