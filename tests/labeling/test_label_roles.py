"""Who may change which label: an annotator replaces only their own, reviewers and admins anyone's;
undo withdraws only the caller's own newest current label and says which; user names are whole."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from headstart.errors import LabelingError, NotAllowedError
from headstart.labeling.users import add_user
from headstart.labeling.web import create_app


@pytest.fixture
def web(blob_project, db):
    """A 3-class project with no labels (on SQLite, then PostgreSQL), users ana and ben (annotators),
    rita (reviewer), adam (admin), and a client; ``call(name, path, **json)`` posts as that user."""
    project, _ = blob_project(db=db, n_per_class=4)
    tokens = {name: add_user(project.store, name, role) for name, role in
              (("ana", "annotator"), ("ben", "annotator"), ("rita", "reviewer"), ("adam", "admin"))}
    client = TestClient(create_app(project), base_url="http://127.0.0.1")

    def call(name: str, path: str, **body):
        return client.post(path, json=body, headers={"Authorization": f"Bearer {tokens[name]}"})
    yield project, call
    client.close()


def labels_of(project, item: str) -> list[tuple[str, str]]:
    return [(label["label"], label["annotator"]) for label in project.store.item(item)["labels"]]


def test_an_annotator_cannot_replace_a_reviewers_or_another_annotators_label(web):
    project, call = web
    first, second = project.ids[:2]
    assert call("rita", "/api/labels", id=first, label="c0").status_code == 200
    assert call("ben", "/api/labels", id=second, label="c0").status_code == 200
    for item, owner in ((first, "rita"), (second, "ben")):
        response = call("ana", "/api/labels", id=item, label="c1", replace=True)
        assert response.status_code == 403, item
        assert f"by '{owner}'" in response.json()["detail"] and "only their own" in response.json()["detail"]
        assert labels_of(project, item) == [("c0", owner)]


def test_the_author_reviewers_and_admins_may_replace(web):
    project, call = web
    item = project.ids[0]
    call("ana", "/api/labels", id=item, label="c0")
    assert call("ana", "/api/labels", id=item, label="c1", replace=True).status_code == 200  # her own
    assert call("rita", "/api/labels", id=item, label="c2", replace=True).status_code == 200
    assert call("adam", "/api/labels", id=item, label="c0", replace=True).status_code == 200
    assert labels_of(project, item) == [("c0", "adam")]
    assert call("ana", "/api/labels", id=item, label="c1", replace=True).status_code == 403  # not hers any more


def test_a_persons_label_still_supersedes_the_models_and_the_cli_may_replace_any(web):
    project, call = web
    item, other = project.ids[:2]
    project.store.add_label(item, "c0", annotator="model", source="model")
    assert call("ana", "/api/labels", id=item, label="c1").status_code == 200
    assert labels_of(project, item) == [("c1", "ana")]
    project.add(item, "c2", annotator="rita", replace=True)  # the CLI: no role, the database in hand
    assert labels_of(project, item) == [("c2", "rita")]
    project.add(other, "c0", annotator="ben")
    with pytest.raises(NotAllowedError, match=f"item '{other}'"):  # the same rule below the web page
        project.add(other, "c1", annotator="ana", replace=True, role="annotator")


def test_undo_withdraws_only_the_callers_own_current_label_and_says_which(web):
    project, call = web
    first, second = project.ids[:2]
    call("ana", "/api/labels", id=first, label="c0")
    call("ana", "/api/labels", id=second, label="c0")
    call("rita", "/api/labels", id=second, label="c1", replace=True)  # the reviewer corrects ana's newest
    undone = call("ana", "/api/undo").json()
    assert undone["undone"]["id"] == first and undone["undone"]["annotator"] == "ana"
    assert f"'c0' of item '{first}'" in undone["message"]
    assert labels_of(project, first) == [] and labels_of(project, second) == [("c1", "rita")]
    nothing = call("ana", "/api/undo").json()
    assert nothing["undone"] is None and "no current label" in nothing["message"]
    assert labels_of(project, second) == [("c1", "rita")]
    assert call("rita", "/api/undo").json()["undone"]["id"] == second  # the reviewer's undo brings ana's back
    assert labels_of(project, second) == [("c0", "ana")]


@pytest.mark.parametrize("name", ["alice\n", "alice\r\n", "\nalice", "al ice", ""])
def test_a_user_name_with_a_newline_or_space_is_refused(blob_project, name):
    project, _ = blob_project(n_per_class=2)
    with pytest.raises(LabelingError, match="is not allowed"):
        add_user(project.store, name, "annotator")
    assert project.users() == []


@pytest.mark.server
def test_undo_does_not_withdraw_a_label_replaced_after_it_was_read(blob_project, postgres_url):
    """PostgreSQL lets a reviewer's replace commit between undo's read and its write (SQLite's
    BEGIN IMMEDIATE does not): the replaced label is not withdrawn and nothing it had replaced comes back."""
    from sqlalchemy import event

    from headstart.labeling.store import Store

    project, _ = blob_project(db=postgres_url, n_per_class=2)
    item = project.ids[0]
    project.add(item, "c0", annotator="ana")
    project.add(item, "c1", annotator="ana", replace=True, role="annotator")  # her own correction
    reviewer = Store.open(postgres_url)
    replaced = []

    def replace_first(connection, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE LABELS SET SUPERSEDED_AT") and not replaced:
            replaced.append(reviewer.add_label(item, "c2", annotator="rita", replace=True, role="reviewer"))
    event.listen(project.store.engine, "before_cursor_execute", replace_first)
    try:
        assert project.withdraw_last("ana") is None  # her only current label was replaced meanwhile
    finally:
        event.remove(project.store.engine, "before_cursor_execute", replace_first)
        reviewer.close()
    assert replaced and labels_of(project, item) == [("c2", "rita")]
