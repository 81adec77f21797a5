"""Filling and working the review queue from the page: label issues, disagreements and the
auto-accepted labels the model was least sure of, each with its reason and a suggested label."""

from __future__ import annotations

from headstart.errors import LabelingError
from headstart.labeling.project import LabelingProject

LOW_CONFIDENCE = "low-confidence auto-accept"


def queue_low_confidence(project: LabelingProject, *, limit: int = 20) -> int:
    """Queue the ``limit`` auto-accepted (model) labels with the lowest stored confidence."""
    accepted = project.current_labels(("model",))
    predictions = project.predictions_of([record.item for record in accepted])
    scored = sorted(((predictions[r.item]["confidence"], r) for r in accepted if r.item in predictions),
                    key=lambda pair: pair[0])[:limit]
    return project.add_review([
        (record.item, LOW_CONFIDENCE, f"auto-accepted as '{record.label}' at confidence {confidence:.2f}",
         predictions[record.item]["label"]) for confidence, record in scored])


def scan(project: LabelingProject) -> dict:
    """Look for items to review (label issues, disagreements, low-confidence auto-accepts); each check
    that cannot run yet says why instead of failing the others. Label issues and low-confidence
    auto-accepts both wait, with one note saying why, while the out-of-fold model is not clearly
    better than chance (:mod:`headstart.labeling.chance_check`)."""
    from headstart.labeling.agreement import agreement_report
    from headstart.labeling.issues import scan_issues

    found, notes = {}, []
    held_back = False
    try:
        issues = scan_issues(project)
        held_back = issues.held_back
        if held_back:
            notes.append(issues.check.message())
        else:
            found["label issues"] = len(issues.found)
    except LabelingError as error:
        notes.append(f"label issues: {error.message}")
    checks = [("disagreements", lambda: agreement_report(project)["disagreements"])]
    if not held_back:
        checks.append((LOW_CONFIDENCE + "s", lambda: queue_low_confidence(project)))
    for name, check in checks:
        try:
            found[name] = int(check())
        except LabelingError as error:
            notes.append(f"{name}: {error.message}")
    return {"found": found, "notes": notes, "held_back": held_back, "open": len(project.review_queue())}


def open_entries(project: LabelingProject, limit: int = 50) -> list[dict]:
    """The open review entries, oldest first, each with its item's content and current labels."""
    entries = project.review_queue()[:limit]
    for entry in entries:
        item = project.item(entry["id"])
        entry["content"] = item["content"] if project.modality == "text" else None
        entry["media"] = None if project.modality == "text" else media_url(entry["id"])
        entry["labels"] = item["labels"]
    return entries


def resolve(project: LabelingProject, review_id: int, action: str, label: str | None, reviewer: str,
            comment: str = "") -> dict:
    """``keep`` the item's labels, or ``relabel`` it with ``label`` (the reviewer's label replaces the
    current one, with ``comment``); the entry is resolved either way."""
    entry = next((e for e in project.review_queue() if e["review_id"] == review_id), None)
    if entry is None:
        raise LabelingError(f"no open review entry {review_id}", where="review_id",
                            fix="reload the review page; someone may have resolved it")
    record = None
    if action == "relabel":
        if not label:
            raise LabelingError("relabel needs a label", where="label",
                                fix=f"send one of: {', '.join(project.classes)}")
        record = project.add(entry["id"], label, annotator=reviewer, replace=True, comment=comment)
    project.resolve_review(review_id)
    return {"review_id": review_id, "id": entry["id"], "action": action,
            "label": None if record is None else record.row()}


def media_url(item_id: str) -> str:
    from urllib.parse import quote

    return "/media/" + quote(item_id)
