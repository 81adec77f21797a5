"""Export and import: CSV/JSONL with annotator, time and source; Label Studio JSON both ways."""

from __future__ import annotations

import csv
import json

import pytest

from headstart.errors import LabelConflictError, LabelingError
from headstart.labeling import init_project
from headstart.labeling.exchange import export_label_studio, export_labels, import_labels
from labeling_helpers import write_pool


def project_with_labels(tmp_path, name="a", **options):
    pool = write_pool(tmp_path / "pool.csv", 8)
    project = init_project(pool, labels="neg,pos", db=tmp_path / f"{name}.db", backbone="minilm-l6", **options)
    project.add("i0", "pos", annotator="ana")
    project.add("i1", "neg", annotator="ben")
    project.store.add_label("i2", "pos", annotator="model:v1", source="model")
    return project


def test_csv_and_jsonl_exports_carry_annotator_time_and_source(tmp_path):
    project = project_with_labels(tmp_path)
    rows = list(csv.DictReader(open(export_labels(project, tmp_path / "out.csv"), encoding="utf-8")))
    assert [(r["id"], r["text"], r["label"], r["annotator"], r["source"]) for r in rows] == [
        ("i0", "item number 0", "pos", "ana", "person"), ("i1", "item number 1", "neg", "ben", "person"),
        ("i2", "item number 2", "pos", "model:v1", "model")]
    assert all(r["created_at"].endswith("+00:00") for r in rows)
    lines = [json.loads(line) for line in open(export_labels(project, tmp_path / "out.jsonl", include_model=False))]
    assert [(r["id"], r["annotator"], r["source"]) for r in lines] == [("i0", "ana", "person"), ("i1", "ben", "person")]
    with pytest.raises(LabelingError, match="cannot export to '.txt'"):
        export_labels(project, tmp_path / "out.txt")
    assert not list(tmp_path.glob(".out*"))  # no temporary files left


def test_a_multi_annotator_item_exports_its_majority(tmp_path):
    pool = write_pool(tmp_path / "pool.csv", 3)
    project = init_project(pool, labels="neg,pos", db=tmp_path / "m.db", backbone="minilm-l6", multi_share=1.0,
                           annotators_per_item=3)
    for annotator, label in (("ana", "pos"), ("ben", "pos"), ("cy", "neg")):
        project.add("i0", label, annotator=annotator)
    project.add("i1", "pos", annotator="ana")
    project.add("i1", "neg", annotator="ben")  # a tie: not settled, not exported
    rows = list(csv.DictReader(open(export_labels(project, tmp_path / "out.csv"))))
    assert [(r["id"], r["label"], r["annotator"]) for r in rows] == [("i0", "pos", "ana+ben")]
    every = list(csv.DictReader(open(export_labels(project, tmp_path / "all.csv", every_label=True))))
    assert len(every) == 5


def test_a_labeled_export_trains_with_headstart_fit(tmp_path, text_csv, tiny_bert_name):
    import headstart

    source = text_csv("topics.csv", n_per_class=12)
    texts = list(csv.DictReader(open(source)))
    pool = tmp_path / "pool.csv"
    with open(pool, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([[r["text"]] for r in texts])
    project = init_project(pool, labels="food,sports,tech", db=tmp_path / "t.db", backbone=tiny_bert_name)
    for item, row in zip(project.ids, texts):
        project.add(item, row["label"], annotator="ana")
    model = headstart.fit(export_labels(project, tmp_path / "labels.csv"), backbone=tiny_bert_name, mode="probe")
    assert model.classes == ["food", "sports", "tech"] and model.metrics["n"] > 0


def test_label_studio_round_trip(tmp_path):
    import numpy as np

    from headstart.learn.head import LinearHead

    first = project_with_labels(tmp_path, "a")
    version = first.add_model_version("probe", status="done", weights=LinearHead(
        np.zeros((2, 4), np.float32), np.array([0.0, 1.0], np.float32)).to_bytes())
    first.store.replace_predictions(version, [1, 2], ["pos", "pos"], [0.73, 0.73], [[0.27, 0.73]] * 2)
    tasks_path = export_label_studio(first, tmp_path / "tasks.json")
    tasks = json.loads(tasks_path.read_text())
    assert len(tasks) == 8 and tasks[0]["data"] == {"text": "item number 0", "headstart_id": "i0"}
    assert tasks[0]["annotations"][0]["result"][0]["value"]["choices"] == ["pos"]
    assert tasks[0]["annotations"][0]["completed_by"] == "ana"
    assert tasks[1]["predictions"][0]["score"] == pytest.approx(0.73)
    second = init_project(write_pool(tmp_path / "pool2.csv", 8), labels="neg,pos", db=tmp_path / "b.db",
                          backbone="minilm-l6")
    assert import_labels(second, tasks_path) == 3
    got = [(r.item, r.label, r.annotator, r.source) for r in second.store.current_labels()]
    assert got == [("i0", "pos", "ana", "import"), ("i1", "neg", "ben", "import"), ("i2", "pos", "model:v1", "import")]
    assert import_labels(second, tasks_path) == 3  # the same file again changes nothing
    assert len(second.store.current_labels()) == 3


def test_label_studio_tasks_match_by_text_and_errors_store_nothing(tmp_path):
    project = init_project(write_pool(tmp_path / "pool.csv", 4), labels="neg,pos", db=tmp_path / "c.db",
                           backbone="minilm-l6")
    choice = lambda label: [{"type": "choices", "from_name": "s", "to_name": "t",  # noqa: E731
                             "value": {"choices": [label]}}]
    tasks = [{"id": 11, "data": {"text": "item number 3"}, "annotations": [
        {"result": choice("neg"), "completed_by": {"email": "dee@example.org"}},
        {"result": choice("pos"), "was_cancelled": True}]}]
    path = tmp_path / "ls.json"
    path.write_text(json.dumps(tasks))
    assert import_labels(project, path) == 1
    assert [(r.item, r.label, r.annotator) for r in project.store.current_labels()] == [
        ("i3", "neg", "dee@example.org")]
    tasks += [{"id": 12, "data": {"text": "item number 0"}, "annotations": [{"result": choice("pos")}]},
              {"id": 13, "data": {"text": "not in the pool"}, "annotations": [{"result": choice("pos")}]}]
    path.write_text(json.dumps(tasks))
    with pytest.raises(LabelingError, match=r"ls.json task 3 \(id 13\): the task matches no item"):
        import_labels(project, path)
    tasks[2]["data"]["text"] = "item number 1"
    tasks[2]["annotations"][0]["result"] = choice("maybe")
    path.write_text(json.dumps(tasks))
    with pytest.raises(LabelingError, match="label 'maybe' is not in the label set"):
        import_labels(project, path)
    assert len(project.store.current_labels()) == 1


def test_csv_import_round_trip_and_conflicts(tmp_path):
    first = project_with_labels(tmp_path, "a")
    out = export_labels(first, tmp_path / "out.csv")
    second = init_project(write_pool(tmp_path / "pool2.csv", 8), labels="neg,pos", db=tmp_path / "b.db",
                          backbone="minilm-l6")
    second.add("i1", "pos", annotator="zed")
    with pytest.raises(LabelConflictError):
        import_labels(second, out)
    assert len(second.store.current_labels()) == 1  # all or nothing
    assert import_labels(second, out, replace=True) == 3
    assert {(r.item, r.label) for r in second.store.current_labels()} == {("i0", "pos"), ("i1", "neg"), ("i2", "pos")}
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\ni0,pos\nq9,neg\n")
    with pytest.raises(LabelingError, match=r"bad.csv row 3: unknown item id 'q9'"):
        import_labels(second, bad)
