"""The admin page's figures: labels per class and per annotator, agreement, and the model versions'
accuracy over time as a plot (matplotlib, drawn to an inline SVG)."""

from __future__ import annotations

import io

from headstart.errors import LabelingError
from headstart.labeling.judging import ON_RANDOM_LABELS
from headstart.labeling.project import LabelingProject
from headstart.labeling.store import iso


def overview(project: LabelingProject, *, plot: bool = True) -> dict:
    records = project.current_labels()
    per_class = {name: {"person": 0, "import": 0, "model": 0} for name in project.classes}
    per_annotator: dict[str, int] = {}
    for record in records:
        per_class[record.label][record.source] += 1
        if record.source == "person":
            per_annotator[record.annotator] = per_annotator.get(record.annotator, 0) + 1
    versions = [{"id": v.id, "kind": v.kind, "status": v.status, "n_labels": v.n_labels,
                 "accuracy": v.metrics.get("accuracy"), "accuracy_estimate": v.metrics.get("accuracy_estimate"),
                 "created_at": iso(v.created_at)}
                for v in project.model_versions()]
    try:
        from headstart.labeling.agreement import agreement_report

        agreement = agreement_report(project, queue=False)
        agreement.pop("consensus")
    except LabelingError as error:
        agreement = {"note": error.message}
    result = {"items": project.size, "labels": len(records), "per_class": per_class,
              "per_annotator": dict(sorted(per_annotator.items(), key=lambda pair: -pair[1])),
              "agreement": agreement, "model_versions": versions,
              "open_reviews": len(project.review_queue())}
    if plot:
        result["accuracy_svg"] = accuracy_svg(versions)
    return result


def judged_at_random(version: dict) -> bool:
    """Whether the version's accuracy was measured on labels drawn at random (:mod:`headstart.labeling.judging`)."""
    return ON_RANDOM_LABELS in (version.get("accuracy_estimate") or "")


def accuracy_svg(versions: list[dict]) -> str | None:
    """Estimated accuracy of each finished model version against the labels it was trained on; those
    measured on labels drawn at random are marked apart (the loop's own picks make an estimate err low)."""
    done = [v for v in versions if v["status"] == "done" and v["accuracy"] is not None]
    if not done:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.2, 2.4), dpi=100)
    axes.plot([v["n_labels"] for v in done], [v["accuracy"] for v in done], marker="o", color="#2b6cb0",
              label="on the labels (the loop's picks: errs low)")
    judged = [v for v in done if judged_at_random(v)]
    if judged:
        axes.plot([v["n_labels"] for v in judged], [v["accuracy"] for v in judged], linestyle="none", marker="D",
                  color="#c05621", label="on labels drawn at random")
        axes.legend(fontsize=7, loc="lower right")
    for v in done:
        axes.annotate(f"v{v['id']}", (v["n_labels"], v["accuracy"]), textcoords="offset points", xytext=(0, 6),
                      ha="center", fontsize=8)
    axes.set_xlabel("labels the model was trained on")
    axes.set_ylabel("estimated accuracy")
    axes.set_ylim(0, 1.05)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: the SVG goes inside the page
