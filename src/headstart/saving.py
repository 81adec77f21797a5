"""Writing a fitted model's folder: the model itself, its HTML report and the pages beside it."""

from __future__ import annotations

from pathlib import Path

from headstart.evaluate import write_report
from headstart.model import Model
from headstart.transfer.baseline import candidates_sentence
from headstart.transfer.scratch_model import ScratchModel
from headstart.transfer.shift_page import PAGE, shift_page_files, summary_sentence


def save(model: Model | ScratchModel, out: str | Path) -> Path:
    """Write the model folder with its HTML report."""
    config = model.info.get("config", {})
    from_scratch = isinstance(model, ScratchModel)
    report_config = {"backbone": f"none: {model.method}" if from_scratch else model.backbone.name,
                     **({"transfer backbone (not shipped)": config.get("transfer_backbone")} if from_scratch else {}),
                     "mode": config.get("mode"), "seed": config.get("seed"),
                     **{f"{k} items": v for k, v in config.get("counts", {}).items()},
                     "probe C": config.get("probe", {}).get("C"), **config.get("finetune", {})}
    notes = []
    if model.metrics.get("accuracy") is not None and len(model.classes):
        chance = 1 / len(model.classes)
        if model.metrics["accuracy"] <= chance + 0.05:
            notes.append(f"Test accuracy {model.metrics['accuracy']:.1%} is near chance ({chance:.1%}).")
    scratch = model.metrics.get("baseline") or {}
    if (adaptation := model.metrics.get("adaptation")) is not None:
        notes.append(f"Adapted to {adaptation['target']} ({adaptation['target_items']} items): {adaptation['reason']}")
    if scratch.get("verdict"):
        notes += [scratch["verdict"], candidates_sentence(scratch)]
        report_config.update({"scratch baseline": scratch["method"], "scratch accuracy": scratch["accuracy"],
                              "transfer accuracy": scratch["transfer_accuracy"], "shipped": scratch.get("shipped")})
    pages, links = {}, {}
    if (shift := model.info.get("shift")) is not None:  # fit with a target: the shift page beside the report
        notes.append(summary_sentence(shift))
        pages, links = shift_page_files(shift), {"the target's shift from the training data": PAGE}
    folder = Path(out)
    html_path = folder.parent / f".{folder.name}.report.html"
    write_report(html_path, title=f"headstart: {folder.name}", metrics=model.metrics,
                 history=model.info.get("history", []), config=report_config, notes=notes, links=links)
    try:
        return model.save(folder, extra_files={"report.html": html_path.read_text(encoding="utf-8"), **pages})
    finally:
        html_path.unlink(missing_ok=True)
