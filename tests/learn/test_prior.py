"""The class names' zero-shot prior of a text fit: it earns a share only where it predicts the labels."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

import headstart
from headstart.backbones import create_backbone
from headstart.cli import app
from headstart.errors import HeadstartError
from headstart.learn import trainer
from headstart.learn.head import LinearHead, fit_head
from headstart.learn.prior import probe_with_prior
from headstart.learn.probe import final_probe


def _two_blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes told apart by feature 0 alone, hidden among 19 noise features."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 20))
    x[:, 0] += np.where(y == 1, 1.0, -1.0)
    return x.astype(np.float32), y


def _prior(sign: float) -> LinearHead:
    """A head that reads feature 0 the right way (sign 1) or the wrong way round (sign -1)."""
    weight = np.zeros((2, 20), dtype=np.float32)
    weight[1, 0], weight[0, 0] = 2.0 * sign, -2.0 * sign
    return LinearHead(weight, np.zeros(2, dtype=np.float32))


def test_a_prior_that_knows_the_task_earns_a_share_and_helps_few_labels():
    x, y = _two_blobs(12, seed=1)
    test_x, test_y = _two_blobs(2000, seed=2)
    probe = fit_head(x, y, 2, c=1.0, seed=0)
    blended, record = probe_with_prior(_prior(1.0), probe, x, y, 2, c=1.0)
    assert record["probe_weight"] < 1.0
    accuracy = {name: float((head.proba(test_x).argmax(1) == test_y).mean())
                for name, head in (("probe", probe), ("blended", blended))}
    assert accuracy["blended"] > accuracy["probe"], accuracy


def test_a_prior_that_contradicts_the_labels_gets_no_share_and_leaves_the_probe_as_it_was():
    x, y = _two_blobs(40, seed=3)
    probe = fit_head(x, y, 2, c=1.0, seed=0)
    blended, record = probe_with_prior(_prior(-1.0), probe, x, y, 2, c=1.0)
    assert record["probe_weight"] == 1.0 and record["accuracy_zero_shot"] < 0.5
    np.testing.assert_allclose(blended.weight, probe.weight)
    np.testing.assert_allclose(blended.bias, probe.bias)


@pytest.fixture(scope="module")
def topic_splits(tmp_path_factory, write_csv):
    path = write_csv(tmp_path_factory.mktemp("prior") / "topics.csv", n_per_class=10, seed=4)
    data = headstart.prepare(path, seed=0)
    return data.split("train"), data.split("val")


def _probe(splits, backbone_name, **options):
    train_set, val_set = splits
    return trainer.train(create_backbone(backbone_name), train_set, val_set, train_set.classes, mode="probe",
                         engine="torch", **options)


def test_a_text_probe_records_its_prior_and_the_refit_chooses_the_share_again(topic_splits, tiny_st_name):
    blend = _probe(topic_splits, tiny_st_name).config["probe"]["zero_shot_prior"]
    assert blend["chosen_on"] == "every label" and 0.0 <= blend["probe_weight"] <= 1.0
    assert "zero_shot_prior" not in _probe(topic_splits, tiny_st_name, zero_shot_prior=False).config["probe"]


def test_the_shipped_head_is_the_refit_probe_blended_with_the_prior_at_the_recorded_share(topic_splits, tiny_st_name):
    train_set, val_set = topic_splits
    result = _probe(topic_splits, tiny_st_name)
    split = trainer.Splits(create_backbone(tiny_st_name), train_set, val_set, train_set.classes, engine="torch")
    prior = trainer.class_name_prior(split, None).head
    probe = result.config["probe"]
    final, _ = final_probe(split.features(train_set), split.train_y, split.features(val_set), split.val_y,
                           len(train_set.classes), probe["C"])
    share, scale = probe["zero_shot_prior"]["probe_weight"], probe["zero_shot_prior"]["temperature"]
    assert share < 1.0  # the prior does take part here (seeded), so the blend itself is what is checked
    np.testing.assert_allclose(result.head.weight, scale * (share * final.weight + (1 - share) * prior.weight),
                               atol=1e-5)
    np.testing.assert_allclose(result.head.bias, scale * (share * final.bias + (1 - share) * prior.bias), atol=1e-5)


def test_a_wrong_prior_leaves_the_shipped_probe_exactly_as_without_one(topic_splits, tiny_st_name, monkeypatch):
    plain = _probe(topic_splits, tiny_st_name, zero_shot_prior=False).head
    wrong = LinearHead(-3.0 * plain.weight, -3.0 * plain.bias)  # confidently the other way round
    names = trainer.class_name_prior  # the names' head, its weights replaced by the wrong ones
    monkeypatch.setattr(trainer, "class_name_prior",
                        lambda splits, pool, describe, wanted: replace(names(splits, pool, describe), head=wrong))
    result = _probe(topic_splits, tiny_st_name)
    assert result.config["probe"]["zero_shot_prior"]["probe_weight"] == 1.0
    np.testing.assert_allclose(result.head.weight, plain.weight, rtol=1e-6)
    np.testing.assert_allclose(result.head.bias, plain.bias, rtol=1e-6)


def test_an_image_fit_has_no_class_name_prior(image_folder):
    data = headstart.prepare(image_folder, seed=0)
    backbone = create_backbone("effnet-lite0", pretrained=False, image_size=32)
    result = trainer.train(backbone, data.split("train"), data.split("val"), data.split("train").classes,
                           mode="probe", engine="torch")
    assert "zero_shot_prior" not in result.config["probe"]


def test_the_command_turns_the_prior_off(text_csv, tiny_st_name, tmp_path):
    data = text_csv(n_per_class=10, seed=6)
    runs = {}
    for flag in ("--zero-shot-prior", "--no-zero-shot-prior"):
        out = tmp_path / flag
        result = CliRunner().invoke(app, ["fit", str(data), "--backbone", tiny_st_name, "--mode", "probe",
                                          "--no-baseline", "--out", str(out), flag])
        assert result.exit_code == 0, result.output
        runs[flag] = json.loads((out / "config.json").read_text())["probe"]
    assert "zero_shot_prior" in runs["--zero-shot-prior"] and "zero_shot_prior" not in runs["--no-zero-shot-prior"]


def _sst2_rows(path, n, seed):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    picked = np.random.default_rng(seed).choice(len(rows), n, replace=False)
    return [rows[i] for i in picked]


def _write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows({"text": row["text"], "label": row["label"]} for row in rows)
    return path


@pytest.mark.requires_minilm
@pytest.mark.requires_shared_data
def test_with_twenty_sst2_labels_the_names_prior_lifts_the_probe(shared_data, tmp_path):
    train = _write(tmp_path / "train.csv", _sst2_rows(shared_data / "text" / "sst2_train.csv", 20, seed=0))
    test = _write(tmp_path / "test.csv", _sst2_rows(shared_data / "text" / "sst2_test.csv", 400, seed=0))
    accuracy = {}
    for use_prior in (True, False):
        model = headstart.fit(train, test=test, mode="probe", baseline=False, zero_shot_prior=use_prior)
        accuracy[use_prior] = model.metrics["accuracy"]
    # "negative" and "positive" alone score about 75% on SST-2 (benchmarks/zero_shot.py); a probe on 20 labels less
    assert accuracy[True] >= accuracy[False] + 0.03, accuracy


def test_descriptions_of_the_labels_feed_the_prior(text_csv, tiny_st_name, tmp_path):
    data = text_csv(n_per_class=10, seed=7)
    out = tmp_path / "described"
    result = CliRunner().invoke(app, ["fit", str(data), "--backbone", tiny_st_name, "--mode", "probe", "--no-baseline",
                                      "--describe", "sports=a text about a game,food=a recipe", "--out", str(out)])
    assert result.exit_code == 0, result.output
    blend = json.loads((out / "config.json").read_text())["probe"]["zero_shot_prior"]
    assert blend["descriptions"] == {"food": "a recipe", "sports": "a text about a game", "tech": "tech"}


@pytest.mark.parametrize("options, message", [
    (["--describe", "music=a song"], "'music' is described but is not one of the classes"),
    (["--describe", "food=a recipe", "--no-zero-shot-prior"], "the zero-shot prior, which is turned off"),
])
def test_a_wrong_description_is_one_line_and_exit_2(options, message, text_csv, tiny_st_name, tmp_path):
    result = CliRunner().invoke(app, ["fit", str(text_csv(n_per_class=6, seed=8)), "--backbone", tiny_st_name,
                                      "--mode", "probe", "--no-baseline", "--out", str(tmp_path / "m"), *options])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "m").exists()


def test_an_image_fit_refuses_descriptions(image_folder):
    data = headstart.prepare(image_folder, seed=0)
    backbone = create_backbone("effnet-lite0", pretrained=False, image_size=32)
    with pytest.raises(HeadstartError, match="read by a text encoder"):
        trainer.train(backbone, data.split("train"), data.split("val"), data.split("train").classes, mode="probe",
                      engine="torch", describe="red=a red square")
