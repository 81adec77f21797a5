"""Labels in and out: CSV and JSONL (annotator, time, source), and Label Studio's JSON task format.

A labeled export has a ``text`` (or ``path``) and a ``label`` column, so it trains with
``headstart fit labels.csv`` unchanged; its other columns (id, annotator, source, created_at,
model_version, comment) are ignored there. Label Studio tasks carry the item's id in ``data.headstart_id``;
on import, tasks without it are matched by content (text, or the image file's bytes or name).

Imports read untrusted files (the admin page takes uploads): every problem is a ``DataError`` or
``LabelingError`` naming the file, row and field, raised before anything is stored, and ids, labels
and annotator names have a length cap. CSV exports are safe to open in a spreadsheet: a cell that
would start a formula gets a leading ``'`` (OWASP's rule against CSV injection), which an import of
the CSV takes off again.
"""

from __future__ import annotations

import csv
import json
import os
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from headstart.data.dataset import file_hash, text_hash
from headstart.data.sources import parse_table, read_utf8
from headstart.errors import DataError, LabelingError
from headstart.labeling.store import iso
from headstart.output import atomic_open

COLUMNS = ("id", "label", "annotator", "source", "created_at", "model_version", "comment")
# The longest id, label and annotator name an import takes (the web API's limits on ids and labels).
MAX_LENGTH = {"id": 500, "label": 500, "annotator": 200}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _write_atomic(path: Path, write) -> Path:
    """Write through a temporary file beside ``path``, then rename: never a half-written export."""
    with atomic_open(path, newline="") as handle:
        write(handle)
    return path


def label_rows(project, *, every_label: bool = False, include_model: bool = True) -> list[dict]:
    """One row per labeled item (the settled label; a multi-annotator item's majority with its
    annotators joined by '+'), or with ``every_label`` one row per current label."""
    item_column = "text" if project.modality == "text" else "path"
    content = {row.external_id: row.content for row in project.table()}
    sources = ("person", "import", "model") if include_model else ("person", "import")
    records = project.current_labels(sources)
    if every_label:
        return [{item_column: content[r.item], **r.row()} for r in records]
    positions, labels = project.resolved(include_model=include_model)
    ids = project.ids
    by_item: dict[str, list] = {}
    for record in records:
        by_item.setdefault(record.item, []).append(record)
    rows = []
    for position, label_id in zip(positions, labels):
        item = ids[position]
        label = project.classes[label_id]
        agreeing = [r for r in by_item[item] if r.label == label]
        last = max(agreeing, key=lambda r: r.created_at)
        rows.append({item_column: content[item], "id": item, "label": label,
                     "annotator": "+".join(sorted({r.annotator for r in agreeing})),
                     "source": last.source, "created_at": iso(last.created_at), "model_version": last.model_version,
                     "comment": " | ".join(r.comment for r in agreeing if r.comment)})
    return rows


def export_labels(project, path: str | Path, *, every_label: bool = False, include_model: bool = True) -> Path:
    """Write the labels to ``path`` (``.csv`` or ``.jsonl``, by its suffix); returns the path."""
    path = Path(path)
    rows = label_rows(project, every_label=every_label, include_model=include_model)
    item_column = "text" if project.modality == "text" else "path"
    if path.suffix.lower() == ".jsonl":
        return _write_atomic(path, lambda handle: handle.writelines(
            json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    if path.suffix.lower() != ".csv":
        raise LabelingError(f"cannot export to '{path.suffix or path.name}'", where=str(path),
                            fix="end the name with .csv, .jsonl, or .json for Label Studio")

    def write(handle):
        writer = csv.DictWriter(handle, fieldnames=[item_column, *COLUMNS])
        writer.writeheader()
        writer.writerows({key: safe_cell(value) for key, value in row.items()} for row in rows)
    return _write_atomic(path, write)


def safe_cell(value):
    """``value`` as a spreadsheet shows it without running it: a ``'`` before a text that starts with
    =, +, -, @, tab or carriage return; plain numbers (-1, +2.5) stay as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _unquoted(value: str) -> str:
    """A CSV cell as :func:`safe_cell` found it."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


# -- Label Studio ---------------------------------------------------------------------------------

def label_studio_config(project) -> str:
    """A Label Studio labeling config matching the exported tasks (paste it into the project settings).
    Built as XML, so a label with quotes or markup in it stays a value."""
    data = "text" if project.modality == "text" else "image"
    view = ElementTree.Element("View")
    ElementTree.SubElement(view, "Text" if data == "text" else "Image", name=data, value=f"${data}")
    choices = ElementTree.SubElement(view, "Choices", name="label", toName=data, choice="single")
    for name in project.classes:
        ElementTree.SubElement(choices, "Choice", value=name)
    ElementTree.indent(view)
    return ElementTree.tostring(view, encoding="unicode") + "\n"


def _result(project, label: str) -> list[dict]:
    data = "text" if project.modality == "text" else "image"
    return [{"from_name": "label", "to_name": data, "type": "choices", "value": {"choices": [label]}}]


def export_label_studio(project, path: str | Path) -> Path:
    """Every item as a Label Studio task: its current labels as annotations, the newest model's
    prediction as a prediction. ``completed_by`` is the annotator's name."""
    data_key = "text" if project.modality == "text" else "image"
    annotations: dict[str, list[dict]] = {}
    for record in project.current_labels():
        annotations.setdefault(record.item, []).append({
            "result": _result(project, record.label), "completed_by": record.annotator,
            "created_at": iso(record.created_at), "was_cancelled": False,
            "meta": {"headstart_source": record.source, "headstart_model_version": record.model_version}})
    predictions = {item: (label, confidence, version)
                   for item, label, confidence, _, version in project.predictions()}
    tasks = []
    for row in project.table():
        task = {"id": row.id, "data": {data_key: row.content, "headstart_id": row.external_id},
                "annotations": annotations.get(row.external_id, [])}
        if row.external_id in predictions:
            label, confidence, version = predictions[row.external_id]
            task["predictions"] = [{"model_version": f"headstart-v{version}", "score": round(confidence, 6),
                                    "result": _result(project, label)}]
        tasks.append(task)
    return _write_atomic(Path(path), lambda handle: json.dump(tasks, handle, ensure_ascii=False, indent=1))


# -- import -----------------------------------------------------------------------------------------

def _field(value, field: str, where: str) -> str:
    """A field of an imported row as stripped text, refused when longer than its cap."""
    text = "" if value is None else str(value).strip()
    if len(text) > MAX_LENGTH[field]:
        raise DataError(f"the {field} is {len(text):,} characters long, more than {MAX_LENGTH[field]}",
                        where=f"{where}, field '{field}'", fix=f"shorten the {field}s of the file")
    return text


def _expect(value, kind: type, where: str, what: str):
    """``value`` when it is a ``kind`` (list or dict), else a DataError naming the field."""
    if not isinstance(value, kind):
        names = {list: "a list", dict: "an object", str: "a string", bool: "true/false", type(None): "null"}
        raise DataError(f"'{what}' is {names.get(type(value), 'a number')}, not {names[kind]}",
                        where=where, fix="give a Label Studio JSON export (Export > JSON), unchanged")
    return value


def _annotator(value) -> str:
    if isinstance(value, dict):
        return str(value.get("email") or value.get("username") or value.get("id") or "label-studio")
    return "label-studio" if value in (None, "") else str(value)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:  # json's parser recurses once per level of brackets
        raise DataError("the JSON is nested too deeply to read", where=str(path),
                        fix="export the project from Label Studio as JSON") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:  # ValueError: bad JSON, a number too long
        raise DataError(f"cannot read Label Studio JSON ({error})", where=str(path),
                        fix="export the project from Label Studio as JSON") from error


def read_label_studio(project, path: str | Path, *, read_image_files: bool = True) -> list[tuple[str, str, str]]:
    """(item id, label, annotator) of every non-cancelled annotation in a Label Studio export.

    ``read_image_files``: a task's ``data.image`` that is a file on this machine is matched by its
    bytes; otherwise by the file's name only. Off for uploads, whose paths name the server's files.
    """
    path = Path(path)
    tasks = _read_json(path)
    tasks = [tasks] if isinstance(tasks, dict) else _expect(tasks, list, path.name, "the file's top level")
    by_hash: dict[str, str] = {}
    by_name: dict[str, str] = {}
    for row in project.table():
        by_hash.setdefault(row.hash, row.external_id)
        by_name.setdefault(Path(row.content).name, row.external_id)
    known = set(project.ids)
    out = []
    for number, task in enumerate(tasks, start=1):
        where = f"{path.name} task {number}"
        where += f" (id {str(_expect(task, dict, where, 'task').get('id'))[:50]})"
        data = _expect(task.get("data"), dict, where, "data")
        item = _match(data, known, by_hash, by_name, project.modality, read_image_files)
        if item is None:
            raise LabelingError("the task matches no item of the pool", where=where,
                                fix="import tasks exported from this project (they carry data.headstart_id), "
                                    "or tasks whose text or image is in the pool")
        for count, annotation in enumerate(_expect(task.get("annotations") or [], list, where, "annotations"), 1):
            at = f"{where} annotation {count}"
            if _expect(annotation, dict, at, "annotation").get("was_cancelled"):
                continue
            results = [_expect(r, dict, at, "result item") for r in _expect(annotation.get("result") or [], list,
                                                                            at, "result")]
            choices = [r for r in results if r.get("type") == "choices"]
            if not choices:
                continue
            picked = _expect(_expect(choices[0].get("value") or {}, dict, at, "value").get("choices") or [], list,
                             at, "value.choices")
            if picked:
                out.append((item, _field(_expect(picked[0], str, at, "value.choices[0]"), "label", at),
                            _field(_annotator(annotation.get("completed_by")), "annotator", at)))
    return out


def _match(data: dict, known: set, by_hash: dict, by_name: dict, modality: str,
           read_image_files: bool) -> str | None:
    if str(data.get("headstart_id")) in known:
        return str(data["headstart_id"])
    if modality == "text" and isinstance(data.get("text"), str):
        return by_hash.get(text_hash(data["text"]))
    image = data.get("image")
    if isinstance(image, str):
        if read_image_files and os.path.isfile(image):
            return by_hash.get(file_hash(image))
        return by_name.get(Path(image.split("?")[0]).name)
    return None


def read_label_table(project, path: Path) -> list[tuple[str, str, str]]:
    """(item id, label, annotator) rows of a CSV/JSONL with ``id`` and ``label`` (``annotator`` optional)."""
    text = read_utf8(path)
    if not text.strip():
        raise DataError("the file is empty", where=str(path), fix="import a file with id and label columns "
                                                                  "(as `headstart label export` writes)")
    try:
        rows, columns = parse_table(path, text)
    except RecursionError:  # a JSONL line of thousands of nested brackets
        raise DataError("a line is JSON nested too deeply to read", where=str(path),
                        fix="write one flat JSON object a line, with id and label fields") from None
    except ValueError as error:  # json's limit on the digits of a number
        raise DataError(f"cannot read the file ({error})", where=str(path), fix="check the file's numbers") from error
    missing = [c for c in ("id", "label") if c not in columns]
    if missing:
        raise DataError(f"no '{missing[0]}' column; columns found: {', '.join(columns)[:500] or 'none'}",
                        where=str(path),
                        fix="import a file with id and label columns (as `headstart label export` writes)")
    plain = _unquoted if path.suffix.lower() in (".csv", ".tsv") else str
    known = set(project.ids)
    out = []
    for origin, record in rows:
        item, label, annotator = (plain(_field(record.get(name), name, origin))
                                  for name in ("id", "label", "annotator"))
        if item not in known:
            raise LabelingError(f"unknown item id '{item}'", where=origin, fix="use ids of this project's pool")
        if not label:
            continue
        project.check_label(label, origin)
        out.append((item, label, annotator or f"import:{path.name}"))
    return out


def import_labels(project, path: str | Path, *, replace: bool = False, uploaded: bool = False) -> int:
    """Import labels (source ``import``) from a Label Studio ``.json`` export or a ``.csv``/``.jsonl``
    with id and label columns, in one transaction; returns how many labels were read. Any problem
    (a bad file, a row, a field too long) raises before a label is stored.

    ``uploaded``: the file came from the web, so the paths in it are never opened on this machine
    (whether such a file exists would otherwise show in the answer).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", where=str(path), fix="check the path")
    labels = (read_label_studio(project, path, read_image_files=not uploaded) if path.suffix.lower() == ".json"
              else read_label_table(project, path))
    for item, label, _ in labels:
        project.check_label(label, f"{path.name}, item '{item}'")
    project.add_labels(labels, source="import", replace=replace)
    return len(labels)
