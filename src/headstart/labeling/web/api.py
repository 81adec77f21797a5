"""The JSON API under the page (``/api/...``); scripts use it with ``Authorization: Bearer TOKEN``.

Every route runs in FastAPI's thread pool (plain ``def``): the store's calls block, and each opens
its own short transaction, so a label is committed before its response is sent.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from headstart.errors import LabelingError
from headstart.labeling.project import LabelingProject
from headstart.labeling.users import Person
from headstart.labeling.web import review
from headstart.labeling.web.auth import current_user, get_project, require
from headstart.labeling.web.overview import overview

router = APIRouter(prefix="/api", tags=["labeling"])
IMPORT_SUFFIXES = (".csv", ".jsonl", ".json")


class Guess(BaseModel):
    label: str
    p: float


class ItemOut(BaseModel):
    id: str
    text: str | None = Field(None, description="the text (text projects)")
    media: str | None = Field(None, description="URL of the image (image projects)")
    suggestion: str | None = Field(None, description="the model's label, or null before there is a model")
    confidence: float | None = None
    top: list[Guess] = Field(default_factory=list, description="the model's three most likely classes")
    reason: str = Field("", description="why this item comes now (strategy, cold start, second annotator)")


class Progress(BaseModel):
    items: int
    labeled_items: int
    mine: int = Field(description="current labels by the signed-in user")


class Batch(BaseModel):
    items: list[ItemOut]
    classes: list[str]
    progress: Progress


class LabelIn(BaseModel):
    id: str = Field(min_length=1, max_length=500, description="item id")
    label: str = Field(min_length=1, max_length=500, description="one of the project's classes")
    replace: bool = Field(False, description="correct an existing label instead of getting 409")
    comment: str = Field("", max_length=2000, description=(
        "free text kept with the label (why, or what was unclear); the same label again with a comment updates it"))


class ItemRef(BaseModel):
    id: str = Field(min_length=1, max_length=500, description="item id")


class Stored(BaseModel):
    label: dict
    progress: Progress


class Undone(BaseModel):
    undone: dict | None = Field(description="the label withdrawn, or null when there was none")
    message: str = Field(description="which label of which item was withdrawn, in words")
    item: ItemOut | None
    progress: Progress


class ReviewAction(BaseModel):
    action: Literal["keep", "relabel"]
    label: str | None = Field(None, max_length=500, description="the new label (relabel)")
    comment: str = Field("", max_length=2000, description="kept with the new label (relabel)")


def item_views(project: LabelingProject, entries: list[dict]) -> list[ItemOut]:
    """The page's view of items: content or media URL, and the stored prediction's top three classes."""
    stored = project.predictions_of([entry["id"] for entry in entries])
    classes = project.classes
    views = []
    for entry in entries:
        view = ItemOut(id=entry["id"], reason=entry.get("reason", ""))
        if project.modality == "text":
            view.text = entry["content"]
        else:
            view.media = review.media_url(entry["id"])
        prediction = stored.get(entry["id"])
        if prediction is not None:
            ranked = sorted(zip(classes, prediction["proba"]), key=lambda pair: -pair[1])[:3]
            view.suggestion, view.confidence = prediction["label"], prediction["confidence"]
            view.top = [Guess(label=c, p=round(float(p), 4)) for c, p in ranked]
        elif entry.get("prediction"):  # no stored predictions yet: the ranking's own guess
            view.suggestion, view.confidence = entry["prediction"], entry["confidence"]
            view.top = [Guess(label=entry["prediction"], p=round(entry["confidence"], 4))]
        views.append(view)
    return views


@router.get("/next", response_model=Batch, summary="The next items to label, leased to the caller")
def next_items(request: Request, n: int = Query(5, ge=1, le=100), restart: bool = Query(False, description=(
        "give back the items this user held (a reloaded page)")), person: Person = Depends(current_user),
        project: LabelingProject = Depends(get_project)) -> Batch:
    entries = request.app.state.assignments.batch(person.name, n, restart=restart)
    return Batch(items=item_views(project, entries), classes=project.classes,
                 progress=Progress(**project.progress(person.name)))


@router.post("/labels", response_model=Stored, summary="Store one label (committed before the answer)")
def post_label(body: LabelIn, request: Request, person: Person = Depends(current_user),
               project: LabelingProject = Depends(get_project)) -> Stored:
    record = project.add(body.id, body.label, annotator=person.name, replace=body.replace, role=person.role,
                         comment=body.comment)
    request.app.state.assignments.done(person.name, body.id)
    if request.app.state.retrainer is not None:
        request.app.state.retrainer.notify()
    return Stored(label=record.row(), progress=Progress(**project.progress(person.name)))


@router.post("/undo", response_model=Undone, summary="Withdraw the caller's newest label that is still current")
def undo(request: Request, person: Person = Depends(current_user),
         project: LabelingProject = Depends(get_project)) -> Undone:
    record = project.withdraw_last(person.name)
    item = None
    if record is not None:
        request.app.state.assignments.back(person.name, record.item)
        item = item_views(project, [project.item(record.item) | {"reason": "undone"}])[0]
    said = ("you have no current label to withdraw" if record is None else
            f"withdrew your label '{record.label}' of item '{record.item}' (given {record.row()['created_at']})")
    return Undone(undone=None if record is None else record.row(), message=said, item=item,
                  progress=Progress(**project.progress(person.name)))


@router.post("/skip", summary="Pass on an item (not shown to the caller again while the server runs)")
def skip(body: ItemRef, request: Request, person: Person = Depends(current_user),
         project: LabelingProject = Depends(get_project)) -> dict:
    project.item(body.id)  # an unknown id is a 400 naming it
    request.app.state.assignments.skip(person.name, body.id)
    return {"skipped": body.id}


@router.get("/status", summary="Counts of items, labels, annotators, model versions and open reviews")
def status(person: Person = Depends(current_user), project: LabelingProject = Depends(get_project)) -> dict:
    return {**project.status(), "progress": project.progress(person.name), "user": person.name}


@router.get("/review", summary="The open review queue, with reasons and suggested labels")
def review_queue(limit: int = Query(50, ge=1, le=500), person: Person = Depends(require("reviewer")),
                 project: LabelingProject = Depends(get_project)) -> list[dict]:
    return review.open_entries(project, limit)


@router.post("/review/scan", summary="Queue label issues, disagreements and low-confidence auto-accepts")
def review_scan(request: Request, person: Person = Depends(require("reviewer")),
                project: LabelingProject = Depends(get_project)) -> dict:
    return request.app.state.jobs.run("the review scan", review.scan, project)


@router.post("/review/{review_id}", summary="Resolve a review entry: keep the labels, or relabel")
def review_resolve(review_id: int, body: ReviewAction, person: Person = Depends(require("reviewer")),
                   project: LabelingProject = Depends(get_project)) -> dict:
    return review.resolve(project, review_id, body.action, body.label, person.name, comment=body.comment)


@router.get("/admin/overview", summary="Counts per class and annotator, agreement, model versions")
def admin_overview(person: Person = Depends(require("admin")),
                   project: LabelingProject = Depends(get_project)) -> dict:
    return overview(project, plot=False)


@router.get("/export", summary="Download the labels (CSV or JSONL, one row per labeled item)",
            response_class=FileResponse)
def export(format: Literal["csv", "jsonl"] = Query("csv"), every_label: bool = Query(False),
           person: Person = Depends(require("admin")), project: LabelingProject = Depends(get_project)):
    from headstart.labeling.exchange import export_labels

    folder = tempfile.mkdtemp(prefix="headstart-export-")
    path = export_labels(project, Path(folder) / f"labels.{format}", every_label=every_label)
    return FileResponse(path, filename=f"{project.name}-labels.{format}",
                        background=BackgroundTask(_remove, Path(folder)))


@router.post("/import", summary="Import labels from an uploaded file (size-limited; all or none)")
def import_file(file: UploadFile = File(description=".csv/.jsonl with id and label columns, or a Label Studio "
                                                    ".json export"), replace: bool = False,
                person: Person = Depends(require("admin")), project: LabelingProject = Depends(get_project)) -> dict:
    from headstart.labeling.exchange import import_labels

    name = upload_name(file.filename)
    suffix = Path(name).suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise LabelingError(f"cannot import '{name}'", where="file",
                            fix=f"upload a {', '.join(IMPORT_SUFFIXES)} file")
    folder = Path(tempfile.mkdtemp(prefix="headstart-import-"))
    try:
        path = folder / name  # the upload's own name: the one its errors and its annotator name show
        with open(path, "wb") as handle:
            while chunk := file.file.read(1 << 20):
                handle.write(chunk)
        return {"imported": import_labels(project, path, replace=replace, uploaded=True), "file": name}
    finally:
        _remove(folder)


def upload_name(filename: str | None) -> str:
    """An uploaded file's own name, safe as a file name here: its last part (a browser may send a
    whole path), letters, digits and ``. _ -`` only, at most 100 characters."""
    name = re.sub(r"[^\w.\- ]", "_", (filename or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    stem, dot, suffix = name.rpartition(".")
    name = f"{stem[:90]}.{suffix[:9]}" if dot else name[:100]
    return name if name.strip("._ ") else "upload"


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


media = APIRouter(tags=["labeling"])


@media.get("/media/{path:path}", summary="An image of the pool (only files that are items of the pool)",
           response_class=FileResponse)
def media_file(path: str, person: Person = Depends(current_user), project: LabelingProject = Depends(get_project)):
    from headstart.labeling.pool import image_inside, image_root

    if project.modality != "image":
        raise HTTPException(404, "this project has no images")
    if "\0" in path or len(path) > 500:  # no item has such an id; a database may refuse the NUL byte
        raise HTTPException(404, "no such image in the pool")
    try:
        content = project.item(path)["content"]
    except LabelingError:
        raise HTTPException(404, f"'{path}' is not an item of the pool") from None
    # checked again now: a link planted after init must not lead outside the pool's folder
    target = image_inside(image_root(project.source), content)
    if target is None:
        raise HTTPException(404, f"the image of '{path}' is missing or outside the pool's folder")
    return FileResponse(target, headers={"Cache-Control": "private, max-age=3600"})
