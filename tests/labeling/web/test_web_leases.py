"""Leases live in the database: two servers on one database never hand out the same item at once,
on SQLite and on PostgreSQL; an expired lease frees its item, and a label ends its author's lease."""

from __future__ import annotations

import threading

import pytest


@pytest.fixture
def two_servers(make_web, db):
    """Two apps, each with a project of its own, over one database (SQLite file or PostgreSQL): the
    first made by ``make_web`` (30 items, 6 labeled), the second opened on the same store URL."""
    from fastapi.testclient import TestClient

    from headstart.labeling.project import LabelingProject
    from headstart.labeling.store import Store
    from headstart.labeling.web import create_app

    first = make_web(db=db)
    second = create_app(LabelingProject(Store.open(first.project.url), features=first.project.features()))
    with TestClient(second, base_url="http://127.0.0.1") as client:
        yield first, client


def batch(client, token: str, n: int) -> list[str]:
    answer = client.get(f"/api/next?n={n}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def test_two_servers_on_one_database_never_hand_out_the_same_item(two_servers):
    web, second = two_servers
    ana, ben = web.tokens["annotator"], web.tokens["reviewer"]
    handed = {"ana": [], "ben": []}
    for _ in range(2):  # 2 x (5 + 5) of the 24 unlabeled items; before, both servers handed out the same 10
        handed["ana"] += batch(web.client, ana, 5)
        handed["ben"] += batch(second, ben, 5)
    assert len(handed["ana"]) == len(handed["ben"]) == 10
    assert set(handed["ana"]) & set(handed["ben"]) == set()


def test_two_servers_batching_at_the_same_time_share_no_item(two_servers):
    web, second = two_servers
    handed: dict[str, list[str]] = {}

    def ask(client, token: str, name: str) -> None:
        handed[name] = [item for _ in range(3) for item in batch(client, token, 4)]

    threads = [threading.Thread(target=ask, args=(web.client, web.tokens["annotator"], "ana")),
               threading.Thread(target=ask, args=(second, web.tokens["reviewer"], "ben"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(handed["ana"]) == len(handed["ben"]) == 12  # all 24 unlabeled items, split
    assert set(handed["ana"]) & set(handed["ben"]) == set()


def test_an_expired_lease_frees_its_item_and_a_label_ends_its_lease(make_web):
    from headstart.labeling.leases import Leases

    web = make_web(seeded=0, n_per_class=2)
    items = web.project.ids  # six items
    now = [1_000_000.0]
    leases = Leases(web.project.store, seconds=600, clock=lambda: now[0])
    assert leases.take("ana", items, 4) == items[:4]
    assert leases.take("ben", items, 6) == items[4:]  # ana's four are not free
    assert leases.held("ana") == sorted(items[:4]) and leases.count() == 6
    leases.release("ana", items[0])  # ana labeled it
    assert leases.take("ben", items, 6) == [items[0]]
    now[0] += 601
    assert leases.held() == [] and leases.take("ben", items, 6) == items


def test_a_label_through_the_api_ends_the_lease(make_web):
    web = make_web(seeded=0, n_per_class=2)
    items = batch(web.client, web.tokens["annotator"], 2)
    assert web.client.post("/api/labels", json={"id": items[0], "label": "c0"},
                           headers=web.auth()).status_code == 200
    assert web.app.state.assignments.leases.held("annotator") == [items[1]]


def test_an_item_taking_several_annotators_is_leased_to_each_once(make_web):
    from headstart.labeling.leases import Leases

    web = make_web(seeded=0, n_per_class=2, multi_share=1.0)
    leases = Leases(web.project.store)
    items = web.project.ids
    assert leases.take("ana", items, 6) == items
    assert leases.take("ana", items, 6) == []
    assert leases.take("ben", items, 6) == items
