"""Writing a fitted model's folder: the model itself, its HTML report and the pages beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from headstart.data.dataset import Dataset
from headstart.evaluate.report import render_report
from headstart.evaluate.diagnostics import TestPredictions, predictions_csv
from headstart.learn.prior import prior_sentence
from headstart.model import Model
from headstart.transfer.baseline import candidates_sentence
from headstart.transfer.scratch_model import ScratchModel
from headstart.transfer.shift_page import PAGE, shift_page_files, summary_sentence
from headstart.transfer.zero_shot import report_lines

# The fine-tune settings each strategy reads (learn/finetune.py, learn/contrastive.py): the report lists
# only these, and none when the probe was kept.
USED_SETTINGS = {
    "staged": ("strategy", "epochs", "lr", "layer_decay", "unfreeze", "unfreeze_fraction", "batchnorm",
               "batch_size", "weight_decay", "dropout", "label_smoothing", "class_weighted", "patience"),
    "contrastive": ("strategy", "pairing", "epochs", "lr", "batch_size", "unfreeze", "pairs_per_item",
                    "max_pairs", "held_out_pairs_per_item", "held_out_epochs"),
}


def used_settings(config: dict) -> dict:
    """The settings the kept model was trained with: the probe's strength, and the fine-tune's where it was kept."""
    settings = {"probe C": config.get("probe", {}).get("C")}
    finetune = config.get("finetune") or {}
    if config.get("mode") == "finetune" and finetune:
        keys = USED_SETTINGS.get(finetune.get("strategy"), tuple(finetune))
        settings.update({f"finetune {key}": finetune.get(key) for key in keys})
    return settings


def decision(config: dict, metrics: dict, from_scratch: bool) -> dict:
    """Which model was kept and why: a sentence and each candidate's validation accuracy (name, accuracy, kept)."""
    validation = config.get("validation") or {}
    pooled = "finetuned_with_pool" in validation  # auto compared the two as they ship, having learned from the pool
    if pooled:
        validation = {"probe": validation["probe_with_pool"], "finetuned": validation["finetuned_with_pool"]}
    probe = validation.get("probe", config.get("probe", {}).get("val_accuracy"))
    strategy = (config.get("finetune") or {}).get("strategy")
    kept_mode = "scratch" if from_scratch else config.get("mode")
    and_pool = ", with the pool" if pooled else ""
    candidates = [(f"probe (linear head on frozen features{and_pool})", probe, kept_mode == "probe")]
    if "finetuned" in validation:
        candidates.append((f"fine-tune ({strategy}{and_pool})", validation["finetuned"], kept_mode == "finetune"))
    scratch = metrics.get("baseline") or {}
    if scratch.get("validation"):
        candidates.append((f"from scratch ({scratch.get('method')})", scratch["validation"]["scratch"],
                           kept_mode == "scratch"))
    requested = config.get("requested_mode", config.get("mode"))
    if kept_mode == "zero-shot":
        return {"sentence": "Kept: the zero-shot model (no labels): class descriptions against the items.",
                "candidates": []}
    if from_scratch:
        sentence = f"Kept: the model trained from scratch ({scratch.get('method')}). " + str(scratch.get("verdict", ""))
    elif config.get("auto"):
        sentence = f"Kept: the probe (mode auto). Auto {config['auto']}; the fine-tune was discarded."
    elif kept_mode == "finetune" and requested == "auto" and pooled:
        sentence = ("Kept: the fine-tune (mode auto): with the unlabeled pool, it scored at least as well as the "
                    "probe with the pool on the validation split.")
    elif kept_mode == "finetune" and requested == "auto":
        sentence = ("Kept: the fine-tune (mode auto): the probe did not beat it on the validation split "
                    "by more than the two scores' noise.")
    elif kept_mode == "finetune":
        sentence = "Kept: the fine-tune, as mode finetune asks (whatever validation says)."
    else:
        sentence = "Kept: the probe, as mode probe asks: a linear head on the frozen backbone's features."
    return {"sentence": sentence, "candidates": [(name, accuracy, kept) for name, accuracy, kept in candidates
                                                 if accuracy is not None]}


def kept_history(config: dict, history: list[dict]) -> list[dict]:
    """The history with ``kept`` on the row of the model kept: the probe's when auto discarded the fine-tune."""
    if config.get("mode") != "probe" or len(history) <= 1:
        return history
    return [{**row, "kept": i == 0} for i, row in enumerate(history)]  # the probe is the first row


def save(model: Model | ScratchModel, out: str | Path, test_set: Dataset | None = None,
         test_proba: np.ndarray | None = None) -> Path:
    """Write the model folder with its HTML report, and ``test_predictions.csv`` where the test split is given.

    ``test_proba`` is the model's probabilities on ``test_set`` (None: predicted here).
    """
    config = model.info.get("config", {})
    from_scratch = isinstance(model, ScratchModel)
    report_config = {"backbone": f"none: {model.method}" if from_scratch else model.backbone.name,
                     **({"transfer backbone (not shipped)": config.get("transfer_backbone")} if from_scratch else {}),
                     "mode": "scratch" if from_scratch else config.get("mode"), "seed": config.get("seed"),
                     **{f"{k} items": v for k, v in config.get("counts", {}).items()},
                     **({} if from_scratch or "zero_shot" in config else used_settings(config))}
    notes = report_lines(config["zero_shot"]) if "zero_shot" in config else []
    if model.metrics.get("accuracy") is not None and len(model.classes):
        chance = 1 / len(model.classes)
        if model.metrics["accuracy"] <= chance + 0.05:
            notes.append(f"Test accuracy {model.metrics['accuracy']:.1%} is near chance ({chance:.1%}).")
    scratch = model.metrics.get("baseline") or {}
    if (adaptation := model.metrics.get("adaptation")) is not None:
        notes.append(f"Adapted to {adaptation['target']} ({adaptation['target_items']} items): {adaptation['reason']}")
    if config.get("mode") == "probe" and (blend := config.get("probe", {}).get("zero_shot_prior")):
        sentence = prior_sentence(blend)  # how the class names' prior shares the shipped probe
        notes.append(f"{sentence[0].upper()}{sentence[1:]}.")
    if (unlabeled := model.metrics.get("unlabeled")) is not None:  # fit --unlabeled: how the pool was used, and why
        notes.append(f"Unlabeled pool ({unlabeled['pool_items']} items): {unlabeled.get('sentence', 'not used')}.")
        report_config["unlabeled pool"] = unlabeled.get("method")
    if (pseudo := config.get("pseudo_labels")) and config.get("mode") == "finetune":
        taken = ", ".join(f"{label} {n}" for label, n in pseudo["per_class"].items())
        teacher = {"fine-tune": "a first fine-tune on the labels alone"}.get(pseudo.get("teacher"), "the probe")
        if pseudo.get("kept", True):
            notes.append(f"The fine-tune also learned {pseudo['items']} pool items labeled by {teacher} ({taken}).")
        else:
            scores = pseudo["validation"]
            notes.append(f"The fine-tune learned from the labels alone: one that also learned {pseudo['items']} pool "
                         f"items it labeled scored {scores['student']:.1%} on validation, against its "
                         f"{scores['teacher']:.1%}.")
    if scratch.get("verdict"):
        notes += [scratch["verdict"], candidates_sentence(scratch)]
        report_config.update({"scratch baseline": scratch["method"], "scratch accuracy": scratch["accuracy"],
                              "transfer accuracy": scratch["transfer_accuracy"], "shipped": scratch.get("shipped")})
    pages, links = {}, {}
    if (shift := model.info.get("shift")) is not None:  # fit with a target: the shift page beside the report
        notes.append(summary_sentence(shift))
        pages, links = shift_page_files(shift), {"the target's shift from the training data": PAGE}
    test = None
    if test_set is not None:
        proba = model.predict_proba(test_set) if test_proba is None else test_proba
        test = TestPredictions(test_set.items, test_set.modality, test_set.label_ids(list(model.classes)),
                               np.asarray(proba), list(model.classes))
        pages["test_predictions.csv"] = predictions_csv(test)
    folder = Path(out)
    report = render_report(title=f"headstart: {folder.name}", metrics=model.metrics,
                           history=[] if from_scratch else kept_history(config, model.info.get("history", [])),
                           config=report_config,
                           notes=notes, links=links, decision=decision(config, model.metrics, from_scratch), test=test,
                           calibration=None if from_scratch else config.get("calibration"))
    return model.save(folder, extra_files={"report.html": report, **pages})
