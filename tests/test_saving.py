"""The model folder a fit writes: the report, and the target's shift page beside it when a target is given."""

from __future__ import annotations

import csv
import json
import re

import numpy as np

import headstart
from headstart import api, saving
from headstart.data import read_dataset
from headstart.evaluate.calibration import scaled
from headstart.learn import trainer
from headstart.learn.head import LinearHead, softmax
from headstart.model import Model


def _unlabeled(path, texts):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["text"], *([t] for t in texts)])
    return path


def test_a_fit_with_a_target_keeps_the_shift_page_beside_the_report(text_csv, tiny_bert_name, tmp_path):
    data = read_dataset(text_csv("target_source.csv", n_per_class=40, seed=5))
    tech = [t for t, label in zip(data.items, data.labels) if label == "tech"]
    target = _unlabeled(tmp_path / "target.csv", tech)
    out = tmp_path / "adapted"
    model = headstart.fit(text_csv("source.csv"), backbone=tiny_bert_name, mode="probe", target=target,
                          adapt="none", out=out, baseline=False)
    saved = json.loads((out / "shift.json").read_text(encoding="utf-8"))
    assert saved["auc"] == model.info["shift"]["auc"]
    assert saved["items_per_side"] >= 20
    # An all-tech target: the estimated prior of tech rises above the source's third.
    assert saved["priors"]["tech"]["target"] > saved["priors"]["tech"]["source"]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert 'href="shift.html"' in report
    assert "<html" in (out / "shift.html").read_text(encoding="utf-8").lower()


def test_a_fit_without_a_target_writes_no_shift_page(probe_run):
    model, folder = probe_run
    assert "shift" not in model.info
    assert not (folder / "shift.html").exists()
    assert "shift.html" not in (folder / "report.html").read_text(encoding="utf-8")


def _config_keys(report: str) -> list[str]:
    section = report[report.index('id="config"'):]
    return re.findall(r'<td class="key">([^<]+)</td>', section)


def test_a_probe_report_has_no_curve_no_fine_tune_settings_and_every_test_prediction(probe_run, learnable_csv):
    model, folder = probe_run
    report = (folder / "report.html").read_text(encoding="utf-8")
    assert "Kept: the probe, as mode probe asks" in report
    assert 'alt="Training curves"' not in report and "is fitted in one step, so there is no training curve" in report
    keys = _config_keys(report)
    assert "probe C" in keys and not [k for k in keys if k.startswith("finetune")]
    labels = {row["text"]: row["label"] for row in csv.DictReader(open(learnable_csv, encoding="utf-8"))}
    rows = list(csv.DictReader(open(folder / "test_predictions.csv", encoding="utf-8")))
    assert len(rows) == model.info["config"]["counts"]["test"]
    assert all(row["true"] == labels[row["item"]] for row in rows)
    proba = model.predict_proba([row["item"] for row in rows])
    np.testing.assert_allclose([[float(row[f"p_{c}"]) for c in model.classes] for row in rows], proba, atol=1e-5)
    wrong = sum(row["true"] != row["predicted"] for row in rows)
    assert (f"{wrong} test item" in report) if wrong else "No test item was misclassified" in report


def test_a_report_names_the_probe_kept_by_auto_and_both_validations(learnable_csv, tiny_bert_name, tmp_path,
                                                                   monkeypatch):
    """The Fashion-MNIST case of issue 23: the fine-tune lost to the probe on validation; the report says so."""
    real = trainer.finetune

    def failing_finetune(*args, **kwargs):
        classifier, history = real(*args, **kwargs)
        return classifier, [dict(row, val_accuracy=0.0) for row in history]

    monkeypatch.setattr(trainer, "finetune", failing_finetune)
    out = tmp_path / "auto"
    model = headstart.fit(learnable_csv, backbone=tiny_bert_name, mode="auto", out=out, baseline=False,
                          finetune_config=headstart.FinetuneConfig(epochs=1, strategy="staged"))
    assert model.info["config"]["mode"] == "probe"
    report = (out / "report.html").read_text(encoding="utf-8")
    section = report[report.index('id="kept"'):report.index('id="calibration"')]
    assert "Kept: the probe (mode auto). Auto kept the probe: fine-tuning reached 0.0%" in section
    probe = model.info["config"]["validation"]["probe"]
    assert re.search(rf'<tr class="kept-row"><td>probe[^<]*</td><td class="num">{100 * probe:.1f}%</td>', section)
    assert re.search(r'<tr><td>fine-tune \(staged\)</td><td class="num">0.0%</td><td></td></tr>', section)
    assert not [k for k in _config_keys(report) if k.startswith("finetune")]
    assert 'alt="Training curves"' in report  # the discarded fine-tune is still drawn, its star on the probe
    assert saving.kept_history(model.info["config"], model.info["history"])[0]["kept"] is True
    assert not any(row.get("kept") for row in saving.kept_history(model.info["config"], model.info["history"])[1:])


def test_a_fine_tune_lists_only_the_settings_its_strategy_reads(finetune_run):
    model, folder = finetune_run
    keys = _config_keys((folder / "report.html").read_text(encoding="utf-8"))
    assert "finetune lr" in keys and "finetune layer_decay" in keys
    assert not {"finetune pairs_per_item", "finetune few_shot_per_class", "finetune large_text"} & set(keys)
    contrastive = saving.used_settings({"mode": "finetune", "probe": {"C": 1.0}, "finetune": {
        "strategy": "contrastive", "lr": 2e-5, "layer_decay": 0.9, "pairs_per_item": 40, "unfreeze": 3}})
    assert "finetune pairs_per_item" in contrastive and "finetune layer_decay" not in contrastive
    assert "finetune unfreeze" in contrastive  # contrastive tuning trains the unfrozen groups only


def test_an_over_confident_head_is_scaled_and_the_saved_model_predicts_the_scaled_probabilities(
        text_csv, tiny_bert_name, tmp_path, monkeypatch):
    real, sharpened = api.train, {}

    def over_confident(*args, **kwargs):  # the logits multiplied by 8: confidences near 1 whatever the truth
        result = real(*args, **kwargs)
        result.head = LinearHead(result.head.weight * 8, result.head.bias * 8)
        result.val_proba = scaled(result.val_proba, 1 / 8)
        sharpened["head"] = result.head
        return result

    monkeypatch.setattr(api, "train", over_confident)
    out = tmp_path / "scaled"
    model = headstart.fit(text_csv("forty.csv", n_per_class=40, seed=3), backbone=tiny_bert_name, mode="probe",
                          out=out, baseline=False)
    calibration = model.info["config"]["calibration"]
    assert calibration["applied"] and calibration["temperature"] > 2, str(calibration)
    assert calibration["val_nll_after"] < calibration["val_nll_before"]
    temperature = calibration["temperature"]
    loaded = Model.load(out)
    np.testing.assert_allclose(loaded.head.weight, sharpened["head"].weight / temperature, rtol=1e-5)
    texts = ["the team won the match", "fresh bread and soup"]
    features = loaded.features(texts)
    np.testing.assert_allclose(loaded.predict_proba(texts), softmax(sharpened["head"].logits(features) / temperature),
                               atol=1e-5)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert f"the logits are divided by T = {temperature:.2f}" in report


def test_the_decision_names_the_pooled_scores_auto_compared():
    config = {"mode": "finetune", "requested_mode": "auto", "finetune": {"strategy": "contrastive"},
              "validation": {"probe": 0.5, "finetuned": 0.7, "probe_with_pool": 0.6, "finetuned_with_pool": 0.8}}
    chosen = saving.decision(config, {}, from_scratch=False)
    assert chosen["candidates"] == [("probe (linear head on frozen features, with the pool)", 0.6, False),
                                    ("fine-tune (contrastive, with the pool)", 0.8, True)]
    assert "with the unlabeled pool" in chosen["sentence"]
    del config["validation"]["finetuned_with_pool"], config["validation"]["probe_with_pool"]
    assert saving.decision(config, {}, from_scratch=False)["candidates"][1] == ("fine-tune (contrastive)", 0.7, True)
