"""Projects: init from CSV, JSONL and image folders; clear errors; next batches; status."""

from __future__ import annotations

import json

import numpy as np
import pytest

from headstart.errors import DataError, LabelingError
from headstart.labeling import init_project, open_project, read_pool
from labeling_helpers import write_pool


def test_init_from_csv_keeps_ids_items_and_imports_given_labels(tmp_path):
    pool = write_pool(tmp_path / "pool.csv", 6, labels={1: "pos", 4: "neg"})
    project = init_project(pool, labels="neg,pos", db=tmp_path / "p.db", backbone="minilm-l6")
    assert project.ids == [f"i{i}" for i in range(6)]
    assert project.table()[2].content == "item number 2"
    imported = project.store.current_labels()
    assert [(r.item, r.label, r.source, r.annotator) for r in imported] == [
        ("i1", "pos", "import", "import:pool.csv"), ("i4", "neg", "import", "import:pool.csv")]
    reopened = open_project(tmp_path / "p.db")
    assert reopened.classes == ["neg", "pos"] and reopened.status()["labeled_items"] == 2


def test_init_without_id_column_numbers_rows_as_a_spreadsheet(tmp_path):
    pool = write_pool(tmp_path / "pool.csv", 3, ids=False)
    assert read_pool(pool).ids == ["2", "3", "4"]


def test_init_from_jsonl_and_label_set_from_the_pool(tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text("\n".join(json.dumps(r) for r in [{"id": 7, "text": "a b", "label": "x"},
                                                      {"id": 8, "text": "c d", "label": "y"},
                                                      {"id": 9, "text": "e f"}]) + "\n")
    project = init_project(pool, db=tmp_path / "p.db", backbone="minilm-l6")
    assert project.classes == ["x", "y"] and project.ids == ["7", "8", "9"]


def test_init_from_an_image_folder_uses_relative_paths_as_ids(tmp_path, image_folder):
    project = init_project(image_folder, labels="red,blue,dark", db=tmp_path / "p.db")
    assert project.modality == "image" and len(project.ids) == 36
    assert "red/red_00.png" in project.ids
    assert project.store.project.backbone == "effnet-lite0"


def test_duplicate_ids_name_both_rows(tmp_path):
    pool = tmp_path / "pool.csv"
    pool.write_text("id,text\na,one\nb,two\na,three\n")
    with pytest.raises(DataError, match=r"id 'a' appears twice: pool.csv row 2 and pool.csv row 4.*unique"):
        init_project(pool, labels="x,y", db=tmp_path / "p.db", backbone="minilm-l6")
    assert not (tmp_path / "p.db").exists()  # nothing written before the pool is checked


def test_empty_id_and_label_outside_the_set_name_the_row(tmp_path):
    pool = tmp_path / "pool.csv"
    pool.write_text("id,text,label\na,one,x\n,two,\n")
    with pytest.raises(DataError, match=r"pool.csv row 3, column 'id': the id is empty"):
        init_project(pool, labels="x,y", db=tmp_path / "p.db", backbone="minilm-l6")
    pool.write_text("id,text,label\na,one,x\nb,two,z\n")
    with pytest.raises(LabelingError, match=r"pool.csv row 3: label 'z' is not in the label set"):
        init_project(pool, labels="x,y", db=tmp_path / "p.db", backbone="minilm-l6")


def test_label_set_errors(tmp_path):
    pool = write_pool(tmp_path / "pool.csv", 3)
    with pytest.raises(LabelingError, match="at least two labels"):
        init_project(pool, labels="only", db=tmp_path / "p.db", backbone="minilm-l6")
    with pytest.raises(LabelingError, match="label 'a' is given twice"):
        init_project(pool, labels="a,b,a", db=tmp_path / "p.db", backbone="minilm-l6")
    with pytest.raises(LabelingError, match="backbone 'effnet-lite0' is for image"):
        init_project(pool, labels="a,b", db=tmp_path / "p.db", backbone="effnet-lite0")


def test_a_second_init_into_the_same_database_is_refused(tmp_path):
    pool = write_pool(tmp_path / "pool.csv", 3)
    init_project(pool, labels="a,b", db=tmp_path / "p.db", backbone="minilm-l6")
    with pytest.raises(LabelingError, match="already exists"):
        init_project(pool, labels="a,b", db=tmp_path / "p.db", backbone="minilm-l6")


def test_next_cold_start_then_skips_labeled_items(blob_project):
    project, truth = blob_project()
    first = project.next(3)
    assert len(first) == 3 and all(e["prediction"] is None for e in first)
    assert all(e["reason"].startswith("cold start") for e in first)
    picked = [project.position()[e["id"]] for e in first]
    assert len(set(truth[picked])) == 3  # diverse: one item from each cluster
    for e in first:
        project.add(e["id"], project.classes[truth[project.position()[e["id"]]]])
    second = project.next(5)
    assert not {e["id"] for e in first} & {e["id"] for e in second}


def test_second_annotator_is_offered_items_the_first_began(blob_project):
    project, truth = blob_project(multi_share=0.2, annotators_per_item=2)
    multi = [row.external_id for row in project.table() if row.required == 2]
    assert 10 <= len(multi) <= 40  # about 20% of 120
    project.add(multi[0], "c0", annotator="ana")
    offered = project.next(2, annotator="ben")
    assert offered[0]["id"] == multi[0] and offered[0]["reason"] == "second annotator"
    assert multi[0] not in [e["id"] for e in project.next(5, annotator="ana")]


def test_next_uses_the_newest_probe(blob_project):
    from headstart.labeling.retrain import retrain_probe

    project, truth = blob_project()
    rng = np.random.default_rng(1)
    for i in rng.choice(len(truth), 12, replace=False):
        project.add(project.ids[i], project.classes[truth[i]])
    version = retrain_probe(project)
    batch = project.next(4, strategy="margin")
    assert all(e["model_version"] == version and e["prediction"] in project.classes for e in batch)
    proba, _ = project.current_proba()
    margins = np.sort(proba, axis=1)[:, -1] - np.sort(proba, axis=1)[:, -2]
    labeled = {r.item for r in project.store.current_labels()}
    unlabeled = [i for i, item in enumerate(project.ids) if item not in labeled]
    expected = sorted(unlabeled, key=lambda i: margins[i])[:4]
    assert [project.position()[e["id"]] for e in batch] == expected
