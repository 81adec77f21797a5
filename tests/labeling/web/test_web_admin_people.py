"""The admin page's people and guidelines, comments through the API, the label page's hints and
``/docs`` without a CDN, through the app (TestClient); the same in Chromium: ``test_web_browser_more``."""

from __future__ import annotations

import re

import pytest


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" content="([^"]+)"', page).group(1)


def test_an_admin_adds_a_user_sees_the_token_once_and_it_signs_in(make_web):
    web = make_web(seeded=0)
    csrf = web.sign_in("admin")
    page = web.client.post("/admin/users", data={"name": "zoe", "role": "reviewer", "csrf_token": csrf})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    token = re.search(r'class="token-value"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*class="token-value"',
                      page.text)
    token = next(filter(None, token.groups()))
    assert web.project.authenticate(token).role == "reviewer"
    assert token not in web.client.get("/admin").text  # shown once, not on the next visit


def test_an_admin_changes_a_role_issues_a_token_and_disables(make_web):
    web = make_web(seeded=0)
    csrf = web.sign_in("admin")
    old = web.tokens["annotator"]
    moved = web.client.post("/admin/users/annotator", data={"action": "role", "role": "reviewer", "csrf_token": csrf},
                            follow_redirects=False)
    assert moved.status_code == 303 and web.project.authenticate(old).role == "reviewer"
    fresh = web.client.post("/admin/users/annotator", data={"action": "token", "csrf_token": csrf})
    assert web.project.authenticate(old) is None and "Token of annotator" in fresh.text
    web.client.post("/admin/users/reviewer", data={"action": "disable", "csrf_token": csrf})
    assert web.client.get("/api/status", headers=web.auth("reviewer")).status_code == 401
    assert 'data-user="reviewer" class="disabled"' in web.client.get("/admin").text
    web.client.post("/admin/users/reviewer", data={"action": "enable", "csrf_token": csrf})
    assert web.client.get("/api/status", headers=web.auth("reviewer")).status_code == 200


def test_the_last_admin_is_kept_and_bad_input_is_one_line(make_web):
    web = make_web(seeded=0)
    csrf = web.sign_in("admin")
    refused = web.client.post("/admin/users/admin", data={"action": "disable", "csrf_token": csrf})
    assert refused.status_code == 400 and "only admin who can sign in" in refused.text
    taken = web.client.post("/admin/users", data={"name": "reviewer", "role": "annotator", "csrf_token": csrf})
    assert taken.status_code == 400 and "exists already" in taken.text
    bad = web.client.post("/admin/users", data={"name": "<b>x</b>", "role": "annotator", "csrf_token": csrf})
    assert bad.status_code == 400 and "&lt;b&gt;" in bad.text and "<b>x</b>" not in bad.text
    unknown = web.client.post("/admin/users/reviewer", data={"action": "delete", "csrf_token": csrf})
    assert unknown.status_code == 422


@pytest.mark.parametrize("role", ["annotator", "reviewer"])
def test_only_admins_manage_people_and_guidelines(make_web, role):
    web = make_web(seeded=0)
    csrf = web.sign_in(role)
    for path, form in (("/admin/users", {"name": "eve", "role": "admin"}),
                       ("/admin/users/admin", {"action": "disable"}), ("/admin/guidelines", {"markdown": "x"})):
        assert web.client.post(path, data={**form, "csrf_token": csrf}).status_code == 403
    assert [p.name for p in web.project.users()] == ["admin", "annotator", "reviewer"]


def test_admin_forms_need_the_csrf_token(make_web):
    web = make_web(seeded=0)
    web.sign_in("admin")
    assert web.client.post("/admin/users", data={"name": "eve", "role": "admin"}).status_code == 403
    assert web.client.post("/admin/users/reviewer", data={"action": "disable"}).status_code == 403
    assert web.project.authenticate(web.tokens["reviewer"]) is not None


def test_guidelines_are_markdown_shown_on_labeling_pages_with_html_as_text(make_web):
    web = make_web(seeded=0)
    csrf = web.sign_in("admin")
    text = "## Spam\nAds **are** spam. <script>alert(1)</script> [x](javascript:alert(1))"
    assert web.client.post("/admin/guidelines", data={"markdown": text, "csrf_token": csrf},
                           follow_redirects=False).status_code == 303
    for page in ("/", "/review"):
        html = web.client.get(page).text
        assert '<details class="card guidelines" id="guidelines">' in html
        assert "<h2>Spam</h2>" in html and "<strong>are</strong>" in html
        assert "&lt;script&gt;" in html and "<script>alert" not in html and 'href="javascript' not in html
    assert "guidelines" not in web.client.get("/admin").text.split("<main>")[1].split("People")[0]
    web.client.post("/admin/guidelines", data={"markdown": "", "csrf_token": csrf})
    assert 'id="guidelines"' not in web.client.get("/").text


def test_a_comment_goes_with_a_label_and_a_review_relabel(make_web):
    web = make_web()
    item = web.client.get("/api/next?n=1", headers=web.auth()).json()["items"][0]["id"]
    stored = web.client.post("/api/labels", json={"id": item, "label": "c0", "comment": "looks like c1 too"},
                             headers=web.auth())
    assert stored.json()["label"]["comment"] == "looks like c1 too"
    too_long = web.client.post("/api/labels", json={"id": item, "label": "c0", "comment": "x" * 2001},
                               headers=web.auth())
    assert too_long.status_code == 422 and "comment" in too_long.json()["detail"]
    web.project.store.add_review([(item, "label issue", "", "c1")])
    entry = web.project.store.review_queue()[0]
    assert "looks like c1 too" in web.client.get("/review", headers=web.auth("reviewer")).text
    done = web.client.post(f"/api/review/{entry['review_id']}", headers=web.auth("reviewer"),
                           json={"action": "relabel", "label": "c1", "comment": "c1 by the guidelines"})
    assert done.json()["label"]["comment"] == "c1 by the guidelines"


@pytest.mark.parametrize("n_classes, hint", [(2, "<kbd>1</kbd>–<kbd>2</kbd> label"),
                                             (5, "<kbd>1</kbd>–<kbd>5</kbd> label"),
                                             (12, "<kbd>1</kbd>–<kbd>9</kbd>, <kbd>0</kbd> label")])
def test_the_key_hint_counts_the_classes_and_no_timing_line_is_shown(make_web, n_classes, hint):
    web = make_web(seeded=0, n_per_class=2, n_classes=n_classes)
    web.sign_in("annotator")
    page = web.client.get("/").text
    assert hint in page
    assert 'id="timing"' not in page and "ms after the key" not in page


def test_docs_are_served_by_the_app_under_the_policy(make_web):
    web = make_web(seeded=0)
    page = web.client.get("/docs")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "cdn" not in page.text.lower() and "<script>" not in page.text  # no inline script, no CDN
    for path in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert web.client.get(path).status_code == 200, path
    assert web.client.get("/redoc").status_code in (303, 404)  # no CDN page left behind


def test_docs_without_swagger_ui_installed_say_what_to_install(make_web, monkeypatch):
    from headstart.labeling.web import docs

    monkeypatch.setattr(docs, "swagger_files", lambda: None)
    web = make_web(seeded=0)
    page = web.client.get("/docs")
    assert page.status_code == 503 and "fastapi-offline" in page.text and "/openapi.json" in page.text


def test_the_admin_page_says_how_a_queued_fine_tune_gets_trained(make_web):
    from headstart.labeling.retrain import queue_finetune

    web = make_web(seeded=0)
    web.sign_in("admin")
    assert 'id="queued-finetune"' not in web.client.get("/admin").text
    version = queue_finetune(web.project)
    page = web.client.get("/admin").text
    assert f"<td>v{version}</td><td>finetune</td><td>queued</td>" in page
    assert 'id="queued-finetune"' in page and "headstart label retrain --watch" in page
