"""Imports of hostile files answer a clear error and store nothing; exports are safe to open."""

from __future__ import annotations

import csv
import html
import json
import re
import xml.etree.ElementTree as ElementTree

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from headstart.cli import app as cli
from headstart.errors import HeadstartError
from headstart.labeling import init_project
from headstart.labeling.exchange import export_labels, import_labels, label_studio_config
from headstart.labeling.users import add_user
from headstart.labeling.web import create_app
from headstart.labeling.web.redact import public_message
from labeling_helpers import write_pool


def studio(annotations) -> str:
    return json.dumps([{"id": 1, "data": {"text": "item number 0", "headstart_id": "i0"}, "annotations": annotations}])


GOOD_ROW = "i1,pos,ana\n"  # comes first in the table cases: a later bad row must undo it
HOSTILE = {
    "empty.csv": ("", "the file is empty"),
    "bom-only.csv": ("\ufeff", "the file is empty"),
    "nested.json": ("[" * 200_000, "nested too deeply"),
    "nested.jsonl": ('{"id": "i1", "label": "pos"}\n' + "[" * 200_000 + "\n", "nested too deeply"),
    "digits.json": ("1" * 5000, "cannot read Label Studio JSON"),
    "top.json": ('"a string"', "'the file's top level' is a string, not a list"),
    "task.json": ("[5]", "task 1: 'task' is a number, not an object"),
    "annotations.json": (studio("oops"), "'annotations' is a string, not a list"),
    "annotation.json": (studio([5]), "annotation 1: 'annotation' is a number, not an object"),
    "result.json": (studio([{"result": "x"}]), "'result' is a string, not a list"),
    "result-item.json": (studio([{"result": [None]}]), "'result item' is null, not an object"),
    "value.json": (studio([{"result": [{"type": "choices", "value": ["pos"]}]}]), "'value' is a list, not an object"),
    "choices.json": (studio([{"result": [{"type": "choices", "value": {"choices": "pos"}}]}]),
                     "'value.choices' is a string, not a list"),
    "choice.json": (studio([{"result": [{"type": "choices", "value": {"choices": [{"a": 1}]}}]}]),
                    "'value.choices[0]' is an object, not a string"),
    "annotator.csv": ("id,label,annotator\n" + GOOD_ROW + "i0,pos," + "a" * (1 << 20) + "\n",
                      "row 3, field 'annotator': the annotator is 1,048,576 characters long, more than 200"),
    "id.csv": ("id,label\ni1,pos\n" + "i" * 501 + ",pos\n", "row 3, field 'id': the id is 501 characters long"),
    "label.jsonl": ('{"id": "i1", "label": "pos"}\n{"id": "i0", "label": "' + "p" * 501 + '"}\n',
                    "line 2, field 'label': the label is 501 characters long"),
    "studio-annotator.json": (studio([{"completed_by": "x" * 201, "result": [
        {"type": "choices", "value": {"choices": ["pos"]}}]}]), "field 'annotator'"),
}


@pytest.fixture
def project(tmp_path):
    return init_project(write_pool(tmp_path / "pool.csv", 4), labels="neg,pos", db=str(tmp_path / "p.db"),
                        backbone="minilm-l6")


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_file_is_a_clear_error_and_stores_nothing(project, tmp_path, name):
    body, problem = HOSTILE[name]
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    with pytest.raises(HeadstartError) as caught:
        import_labels(project, path)
    assert problem in str(caught.value) and name in str(caught.value)
    assert project.count_labels() == 0


def sign_in(client, token: str) -> str:
    """Sign in through the form as a browser does; the session's CSRF token, read from the page."""
    nonce = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/login").text).group(1)
    assert client.post("/login", data={"token": token, "login_csrf": nonce}, follow_redirects=False).status_code == 303
    return re.search(r'name="csrf" content="([^"]+)"', client.get("/").text).group(1)


@pytest.mark.parametrize("name", ["empty.csv", "nested.json", "nested.jsonl", "annotations.json", "result.json",
                                  "value.json", "annotator.csv"])
def test_the_api_and_the_admin_form_answer_400_naming_the_uploaded_file(project, name):
    body, problem = HOSTILE[name]
    token = add_user(project.store, "root", "admin")
    with TestClient(create_app(project), base_url="http://127.0.0.1") as client:
        response = client.post("/api/import", files={"file": (name, body, "text/plain")},
                               headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 400, response.text
        detail = response.json()["detail"]
        assert detail.startswith(name) and problem in detail and "headstart-import-" not in detail, detail
        form = client.post("/admin/import", data={"csrf_token": sign_in(client, token)},
                           files={"file": (name, body, "text/plain")})
        assert form.status_code == 400 and f"nothing imported: {name}" in html.unescape(form.text)
        assert problem in html.unescape(form.text)
    assert project.count_labels() == 0


@pytest.mark.parametrize("name", ["empty.csv", "bom-only.csv", "nested.json", "nested.jsonl", "result.json"])
def test_the_cli_says_one_line_and_exits_2(project, tmp_path, name):
    path = tmp_path / name
    path.write_text(HOSTILE[name][0], encoding="utf-8")
    result = CliRunner().invoke(cli, ["label", "import", str(path), "--db", str(tmp_path / "p.db")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and HOSTILE[name][1] in result.output


def test_an_upload_with_a_path_for_a_name_is_named_by_its_last_part(project):
    token = add_user(project.store, "root", "admin")
    with TestClient(create_app(project), base_url="http://127.0.0.1") as client:
        response = client.post("/api/import", files={"file": ("../../etc/my labels.csv", "id,label\ni1,pos\n")},
                               headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"imported": 1, "file": "my labels.csv"}
    assert [r.annotator for r in project.current_labels()] == ["import:my labels.csv"]


def test_api_errors_name_the_store_file_not_where_it_lives(project, tmp_path):
    token = add_user(project.store, "ana", "annotator")
    with TestClient(create_app(project), base_url="http://127.0.0.1") as client:
        auth = {"Authorization": f"Bearer {token}"}
        assert client.post("/api/labels", json={"id": "i0", "label": "pos"}, headers=auth).status_code == 200
        conflict = client.post("/api/labels", json={"id": "i0", "label": "neg"}, headers=auth)
    assert conflict.status_code == 409
    assert conflict.json()["detail"].startswith("p.db: item 'i0' already has") and str(tmp_path) not in conflict.text


def test_public_message_keeps_routes_and_urls():
    assert public_message("/tmp/x/y/labels.db: item 'a' (see /docs)") == "labels.db: item 'a' (see /docs)"
    assert public_message("use /api/labels or http://127.0.0.1/api/next") == "use /api/labels or http://127.0.0.1/api/next"


# -- exports ------------------------------------------------------------------------------------------

def test_csv_exports_defuse_formulas_and_import_back_unchanged(tmp_path):
    pool = tmp_path / "pool.csv"
    texts = ["=1+2", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "-1", "plain"]
    with open(pool, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["id", "text"], *[[f"i{k}", text] for k, text in enumerate(texts)], ["=id", "x"]])
    labels = ["=HYPERLINK(\"http://evil\")", "-5", "ok"]
    project = init_project(pool, labels=labels, db=str(tmp_path / "a.db"), backbone="minilm-l6")
    for k in range(len(texts)):
        project.add(f"i{k}", labels[k % 3], annotator="@ana")
    project.add("=id", "ok", annotator="ben")
    out = export_labels(project, tmp_path / "out.csv")
    rows = list(csv.DictReader(open(out, newline="", encoding="utf-8")))
    by_id = {row["id"]: row for row in rows}
    assert [by_id[f"i{k}"]["text"] for k in range(len(texts))] == [
        "'=1+2", "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1)", "'\tTAB", "'\rCR", "-1", "plain"]
    assert {row["label"] for row in rows} == {"'=HYPERLINK(\"http://evil\")", "-5", "ok"}
    assert {row["annotator"] for row in rows} == {"'@ana", "ben"} and "'=id" in by_id
    fresh = init_project(pool, labels=labels, db=str(tmp_path / "b.db"), backbone="minilm-l6")
    assert import_labels(fresh, out) == len(texts) + 1
    assert sorted((r.item, r.label, r.annotator) for r in fresh.current_labels()) == sorted(
        (r.item, r.label, r.annotator) for r in project.current_labels())


def test_the_label_studio_config_is_well_formed_xml_whatever_the_labels(tmp_path):
    labels = ['"><script>alert(1)</script>', "a & b", "<Choice value='x'/>"]
    project = init_project(write_pool(tmp_path / "pool.csv", 3), labels=labels, db=str(tmp_path / "x.db"),
                           backbone="minilm-l6")
    config = label_studio_config(project)
    view = ElementTree.fromstring(config)
    assert [choice.get("value") for choice in view.iter("Choice")] == labels
    assert view.find("Text").get("value") == "$text" and "<script>" not in config
