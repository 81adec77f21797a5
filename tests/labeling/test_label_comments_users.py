"""Comments on labels and user management in the store: the 0004 migration on an existing database,
comments kept and exported, roles changed, users disabled and enabled, an admin always left."""

from __future__ import annotations

import csv
import json

import pytest
from sqlalchemy import text

from headstart.errors import LabelingError
from headstart.labeling import Store, init_project
from headstart.labeling import sessions
from headstart.labeling.exchange import export_labels
from headstart.labeling.users import add_user, authenticate, list_users, new_token, set_disabled, set_role, user_table
from labeling_helpers import store_at_revision, write_pool


def make_project(tmp_path, db, n=6):
    return init_project(write_pool(tmp_path / "pool.csv", n), labels="neg,pos", db=db, backbone="minilm-l6")


def test_a_0003_database_upgrades_with_its_labels_and_users(tmp_path, db):
    """The 0004 migration adds the columns to a database that has rows (SQLite and PostgreSQL)."""
    store_at_revision(db, "0003", ("INSERT INTO users (name, role, token_hash, created_at) "
                                   "VALUES ('ana', 'admin', 'x', CURRENT_TIMESTAMP)", {}))
    store = Store.open(db, create=True)
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"  # the head
        assert connection.execute(text("SELECT name, disabled_at FROM users")).all() == [("ana", None)]
    store.close()


def test_a_comment_is_kept_updated_and_exported(tmp_path, db):
    project = make_project(tmp_path, db)
    first = project.add("i1", "pos", annotator="ana", comment="  sarcastic, so pos?  ")
    assert first.comment == "sarcastic, so pos?"
    project.add("i2", "neg", annotator="ana")
    assert project.add("i2", "neg", annotator="ana", comment="on second look").comment == "on second look"
    assert project.add("i2", "neg", annotator="ana").comment == "on second look"  # no comment: the old one stays
    assert [label["comment"] for label in project.store.item("i1")["labels"]] == ["sarcastic, so pos?"]

    rows = list(csv.DictReader(open(export_labels(project, tmp_path / "out.csv"), newline="")))
    assert {row["id"]: row["comment"] for row in rows} == {"i1": "sarcastic, so pos?", "i2": "on second look"}
    lines = export_labels(project, tmp_path / "out.jsonl", every_label=True).read_text().splitlines()
    assert [json.loads(line)["comment"] for line in lines] == ["sarcastic, so pos?", "on second look"]


def test_a_comment_that_starts_a_formula_is_quoted_in_the_csv(tmp_path):
    project = make_project(tmp_path, str(tmp_path / "labels.db"))
    project.add("i1", "pos", annotator="ana", comment="=HYPERLINK(\"http://x\")")
    rows = list(csv.DictReader(open(export_labels(project, tmp_path / "out.csv"), newline="")))
    assert rows[0]["comment"].startswith("'=")


def test_roles_change_and_disabled_users_cannot_sign_in(tmp_path):
    store = make_project(tmp_path, str(tmp_path / "labels.db")).store
    boss, ana = add_user(store, "boss", "admin"), add_user(store, "ana", "annotator")
    signed_in = sessions.start(store, ana)
    set_role(store, "ana", "reviewer")
    assert sessions.look_up(store, signed_in.session_id).person.role == "reviewer"  # the next request sees it

    set_disabled(store, "ana", True)
    assert authenticate(store, ana) is None
    assert sessions.look_up(store, signed_in.session_id) is None  # signed out at once
    assert sessions.start(store, ana) is None
    assert [p.name for p in list_users(store)] == ["boss"]
    assert [(u["name"], u["disabled"]) for u in user_table(store)] == [("ana", True), ("boss", False)]

    set_disabled(store, "ana", False)  # enabled again, with the token they had
    assert authenticate(store, ana).role == "reviewer"
    assert authenticate(store, new_token(store, "ana")).name == "ana" and authenticate(store, ana) is None
    assert authenticate(store, boss).role == "admin"


def test_the_last_admin_is_neither_demoted_nor_disabled(tmp_path):
    store = make_project(tmp_path, str(tmp_path / "labels.db")).store
    add_user(store, "boss", "admin")
    with pytest.raises(LabelingError, match="only admin who can sign in"):
        set_role(store, "boss", "reviewer")
    with pytest.raises(LabelingError, match="only admin who can sign in"):
        set_disabled(store, "boss", True)
    with pytest.raises(LabelingError, match="unknown role 'owner'"):
        set_role(store, "boss", "owner")
    with pytest.raises(LabelingError, match="no user 'nobody'"):
        set_disabled(store, "nobody", True)
    add_user(store, "second", "admin")
    set_role(store, "boss", "reviewer")  # another admin is left now
    assert [(u["name"], u["role"]) for u in user_table(store)] == [("boss", "reviewer"), ("second", "admin")]
