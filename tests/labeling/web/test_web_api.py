"""The JSON API: batches with suggestions, labels, undo, skip, review, admin figures, export and import."""

from __future__ import annotations

import csv
import io

from headstart.labeling.retrain import BackgroundRetrainer
from headstart.labeling.web.review import LOW_CONFIDENCE


def test_next_batch_has_suggestions_and_top_three_from_the_stored_predictions(make_web):
    web = make_web()
    response = web.client.get("/api/next?n=4", headers=web.auth())
    assert response.status_code == 200
    batch = response.json()
    assert batch["classes"] == ["c0", "c1", "c2"]
    assert len(batch["items"]) == 4
    stored = web.project.store.predictions_of([item["id"] for item in batch["items"]])
    for item in batch["items"]:
        assert item["text"].startswith("item number")
        assert item["suggestion"] == stored[item["id"]]["label"] == item["top"][0]["label"]
        assert [g["p"] for g in item["top"]] == sorted((g["p"] for g in item["top"]), reverse=True)
        assert len(item["top"]) == 3
    assert batch["progress"] == {"items": 30, "labeled_items": 6, "mine": 0}
    assert "server-timing" in response.headers


def test_people_labeling_at_once_get_different_items(make_web):
    web = make_web()
    mine = {item["id"] for item in web.client.get("/api/next?n=5", headers=web.auth()).json()["items"]}
    theirs = {item["id"] for item in web.client.get("/api/next?n=5", headers=web.auth("reviewer")).json()["items"]}
    assert len(mine) == len(theirs) == 5 and not mine & theirs
    again = {item["id"] for item in web.client.get("/api/next?n=5", headers=web.auth()).json()["items"]}
    assert not again & (mine | theirs)  # the page holds the first five; a reload gives them back:
    reloaded = {item["id"] for item in web.client.get("/api/next?n=5&restart=true", headers=web.auth()).json()["items"]}
    assert reloaded & mine


def test_an_item_for_two_annotators_goes_to_each_once(make_web):
    web = make_web(seeded=0, n_per_class=2, multi_share=1.0)
    mine = [i["id"] for i in web.client.get("/api/next?n=3", headers=web.auth()).json()["items"]]
    theirs = [i["id"] for i in web.client.get("/api/next?n=3", headers=web.auth("reviewer")).json()["items"]]
    assert mine == theirs  # both slots are open
    web.client.post("/api/labels", json={"id": mine[0], "label": "c0"}, headers=web.auth())
    again = [i["id"] for i in web.client.get("/api/next?n=6&restart=true", headers=web.auth()).json()["items"]]
    assert mine[0] not in again and len(again) == 5


def test_items_labeled_elsewhere_are_not_handed_out(make_web):
    web = make_web(seeded=0, n_per_class=4)
    web.client.get("/api/next?n=2", headers=web.auth())  # the server ranks the pool and keeps the ranking
    elsewhere = web.project.ids[:6]
    web.project.store.add_labels([(item, "c0", "cli") for item in elsewhere], source="person")
    rest = {i["id"] for i in web.client.get("/api/next?n=12&restart=true", headers=web.auth()).json()["items"]}
    assert rest == set(web.project.ids) - set(elsewhere)


def test_a_label_is_stored_and_a_second_label_by_someone_else_is_refused(make_web):
    web = make_web()
    item = web.client.get("/api/next?n=1", headers=web.auth()).json()["items"][0]["id"]
    response = web.client.post("/api/labels", json={"id": item, "label": "c1"}, headers=web.auth())
    assert response.status_code == 200
    assert response.json()["label"]["annotator"] == "annotator"
    assert response.json()["progress"]["mine"] == 1
    assert web.project.store.item(item)["labels"][0]["label"] == "c1"
    again = web.client.post("/api/labels", json={"id": item, "label": "c1"}, headers=web.auth())
    assert again.status_code == 200  # the same label again is the stored one, not a second
    clash = web.client.post("/api/labels", json={"id": item, "label": "c2"}, headers=web.auth("reviewer"))
    assert clash.status_code == 409 and "already has the label 'c1'" in clash.json()["detail"]
    fixed = web.client.post("/api/labels", json={"id": item, "label": "c2", "replace": True}, headers=web.auth("reviewer"))
    assert fixed.status_code == 200
    assert [entry["label"] for entry in web.project.store.item(item)["labels"]] == ["c2"]


def test_undo_withdraws_the_last_label_and_gives_the_item_back(make_web):
    web = make_web()
    first, second = [i["id"] for i in web.client.get("/api/next?n=2", headers=web.auth()).json()["items"]]
    for item in (first, second):
        web.client.post("/api/labels", json={"id": item, "label": "c0"}, headers=web.auth())
    undone = web.client.post("/api/undo", headers=web.auth()).json()
    assert undone["undone"]["id"] == second and undone["item"]["id"] == second
    assert undone["progress"]["mine"] == 1
    assert web.project.store.item(second)["labels"] == []
    history = [(record.item, superseded) for record, superseded in web.project.store.label_history()]
    assert (second, None) not in history and any(item == second for item, _ in history)  # kept, not deleted
    web.client.post("/api/undo", headers=web.auth())
    assert web.client.post("/api/undo", headers=web.auth()).json()["undone"] is None


def test_undo_of_a_correction_brings_back_the_label_it_replaced(make_web):
    web = make_web()
    item = web.project.ids[0]  # a seeded label
    before = web.project.store.item(item)["labels"][0]["label"]
    other = next(c for c in web.project.classes if c != before)
    fixed = web.client.post("/api/labels", json={"id": item, "label": other, "replace": True},
                            headers=web.auth("reviewer"))  # an annotator may correct only their own labels
    assert fixed.status_code == 200
    web.client.post("/api/undo", headers=web.auth("reviewer"))
    assert [entry["label"] for entry in web.project.store.item(item)["labels"]] == [before]


def test_a_skipped_item_is_not_offered_again(make_web):
    web = make_web(n_per_class=3, seeded=0)
    first = web.client.get("/api/next?n=1", headers=web.auth()).json()["items"][0]["id"]
    assert web.client.post("/api/skip", json={"id": first}, headers=web.auth()).status_code == 200
    seen = {i["id"] for i in web.client.get("/api/next?n=20&restart=true", headers=web.auth()).json()["items"]}
    assert first not in seen and len(seen) == 8


def test_review_queue_shows_reason_and_suggestion_and_relabel_resolves_it(make_web):
    web = make_web()
    item = web.project.ids[0]
    web.project.store.add_review([(item, "label issue", "the model disagrees", "c2")])
    entries = web.client.get("/api/review", headers=web.auth("reviewer")).json()
    assert [(e["id"], e["reason"], e["suggested_label"]) for e in entries] == [(item, "label issue", "c2")]
    assert entries[0]["content"] == web.project.store.item(item)["content"]
    done = web.client.post(f"/api/review/{entries[0]['review_id']}", json={"action": "relabel", "label": "c2"},
                           headers=web.auth("reviewer"))
    assert done.status_code == 200
    assert [entry["label"] for entry in web.project.store.item(item)["labels"]] == ["c2"]
    assert web.client.get("/api/review", headers=web.auth("reviewer")).json() == []


def test_scan_queues_low_confidence_auto_accepts(make_web):
    web = make_web(seeded=24)  # enough labels for the model to be clearly better than chance (6 are held back)
    web.project.store.add_label(web.project.ids[29], web.project.store.item(web.project.ids[29])["prediction"]["label"],
                                annotator="model", source="model")
    result = web.client.post("/api/review/scan", headers=web.auth("reviewer")).json()
    assert result["found"][LOW_CONFIDENCE + "s"] == 1
    reasons = {e["reason"] for e in web.client.get("/api/review", headers=web.auth("reviewer")).json()}
    assert LOW_CONFIDENCE in reasons


def test_scan_holds_low_confidence_auto_accepts_back_while_the_model_is_not_clearly_better_than_chance(make_web):
    web = make_web()  # 6 labels of 3 classes: too few to tell the model from chance
    web.project.store.add_label(web.project.ids[20], web.project.store.item(web.project.ids[20])["prediction"]["label"],
                                annotator="model", source="model")
    result = web.client.post("/api/review/scan", headers=web.auth("reviewer")).json()
    assert result["held_back"] and LOW_CONFIDENCE + "s" not in result["found"]
    assert any(note.startswith("held back:") and "more items" in note for note in result["notes"])
    assert web.client.get("/api/review", headers=web.auth("reviewer")).json() == []


def test_admin_counts_follow_the_labels(make_web):
    web = make_web()
    before = web.client.get("/api/admin/overview", headers=web.auth("admin")).json()
    item = web.client.get("/api/next?n=1", headers=web.auth()).json()["items"][0]["id"]
    web.client.post("/api/labels", json={"id": item, "label": "c2"}, headers=web.auth())
    after = web.client.get("/api/admin/overview", headers=web.auth("admin")).json()
    assert after["labels"] == before["labels"] + 1
    assert after["per_class"]["c2"]["person"] == before["per_class"]["c2"]["person"] + 1
    assert after["per_annotator"] == {"annotator": 1}
    assert after["model_versions"][0]["kind"] == "probe"
    assert "note" in after["agreement"]  # no item has two annotators here: it says so


def test_export_and_import_round_trip(make_web):
    web = make_web()
    exported = web.client.get("/api/export?format=csv", headers=web.auth("admin"))
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 6 and {"id", "label", "annotator"} <= set(rows[0])
    upload = "id,label\n" + "".join(f"{web.project.ids[i]},c1\n" for i in (10, 11, 12))
    imported = web.client.post("/api/import", files={"file": ("more.csv", upload, "text/csv")}, headers=web.auth("admin"))
    assert imported.status_code == 200 and imported.json()["imported"] == 3
    assert web.project.store.item(web.project.ids[11])["labels"][0]["label"] == "c1"


def test_openapi_documents_the_api(make_web):
    web = make_web()
    paths = web.client.get("/openapi.json").json()["paths"]
    for path in ("/api/next", "/api/labels", "/api/undo", "/api/skip", "/api/status", "/api/review",
                 "/api/review/{review_id}", "/api/export", "/api/import", "/api/admin/overview"):
        assert path in paths
    assert "/login" not in paths  # pages are not part of the API


def test_the_api_works_on_both_backends(make_web, db):
    web = make_web(db=db)
    items = [i["id"] for i in web.client.get("/api/next?n=3", headers=web.auth()).json()["items"]]
    for item in items:
        assert web.client.post("/api/labels", json={"id": item, "label": "c0"}, headers=web.auth()).status_code == 200
    assert web.client.post("/api/undo", headers=web.auth()).json()["undone"]["id"] == items[-1]
    status = web.client.get("/api/status", headers=web.auth()).json()
    assert status["progress"] == {"items": 30, "labeled_items": 8, "mine": 2}


class InlineRetrainer(BackgroundRetrainer):
    """The background retrainer's own look at the store, run at ``notify()`` in the caller's thread
    instead of a thread's: what it did is done when the request that notified it returns."""

    def start(self) -> "InlineRetrainer":
        return self

    def notify(self) -> None:
        self.run_once()


def test_labels_from_the_page_retrain_the_model(make_web):
    from fastapi.testclient import TestClient

    web = make_web(seeded=6, retrain=True, retrainer=InlineRetrainer)
    web.project.update_settings(retrain_every=4)
    with TestClient(web.app, base_url="http://127.0.0.1") as client:  # runs the app's startup: the retrainer
        assert isinstance(web.app.state.retrainer, InlineRetrainer)
        items = [i["id"] for i in client.get("/api/next?n=4", headers=web.auth()).json()["items"]]
        position = web.project.position()
        for item in items:
            label = web.project.classes[web.truth[position[item]]]
            assert client.post("/api/labels", json={"id": item, "label": label}, headers=web.auth()).status_code == 200
        assert web.app.state.retrainer.errors == []
        versions = client.get("/api/status", headers=web.auth()).json()["model_versions"]
    assert [v["n_labels"] for v in versions] == [6, 10]


def test_a_lease_ends_after_its_time_on_the_clock(make_web):
    """Leases run on the injected clock: the item held by one annotator goes to another once it expires."""
    from headstart.labeling.web.assign import Assignments

    web = make_web(seeded=0, n_per_class=2)
    now = [1000.0]
    assignments = Assignments(web.project, lease_seconds=600, clock=lambda: now[0])
    held = {entry["id"] for entry in assignments.batch("ana", 6)}
    assert len(held) == 6 and assignments.batch("ben", 6) == []  # the pool's six items are ana's
    now[0] += 601
    assert {entry["id"] for entry in assignments.batch("ben", 6)} == held


def test_admin_overview_has_the_agreement_of_two_annotators(make_web):
    web = make_web(seeded=0, n_per_class=3, multi_share=1.0)
    items = [i["id"] for i in web.client.get("/api/next?n=6", headers=web.auth()).json()["items"]]
    for k, item in enumerate(items):
        web.client.post("/api/labels", json={"id": item, "label": "c0" if k < 3 else "c1"}, headers=web.auth())
        web.client.post("/api/labels", json={"id": item, "label": "c0" if k < 4 else "c1"}, headers=web.auth("reviewer"))
    agreement = web.client.get("/api/admin/overview", headers=web.auth("admin")).json()["agreement"]
    assert agreement["items"] == 6 and agreement["disagreements"] == 1
    assert agreement["pairs"][0]["annotators"] == ["annotator", "reviewer"]
    assert agreement["pairs"][0]["agreement"] == 5 / 6
    web.sign_in("admin")
    page = web.client.get("/admin").text
    assert "Fleiss" in page and "annotator / reviewer" in page
