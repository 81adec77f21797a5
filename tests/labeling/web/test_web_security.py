"""Sign-in, roles, malformed requests, the media route, CSRF and body limits."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from headstart.labeling.web.auth import SESSION_COOKIE

API_ROUTES = [("get", "/api/next"), ("post", "/api/labels"), ("post", "/api/undo"), ("post", "/api/skip"),
              ("get", "/api/status"), ("get", "/api/review"), ("post", "/api/review/scan"),
              ("post", "/api/review/1"), ("get", "/api/admin/overview"), ("get", "/api/export"),
              ("post", "/api/import")]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}])
def test_no_or_a_wrong_token_is_401_on_every_api_route(make_web, headers):
    web = make_web(seeded=0)
    for method, path in API_ROUTES:
        response = getattr(web.client, method)(path, headers=headers)
        assert response.status_code == 401, path
        assert "headstart label user add" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


def test_pages_send_a_signed_out_browser_to_sign_in(make_web):
    web = make_web(seeded=0)
    for page in ("/", "/review", "/admin"):
        response = web.client.get(page, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/login"


@pytest.mark.parametrize("role,path", [("annotator", "/api/admin/overview"), ("annotator", "/api/export"),
                                       ("reviewer", "/api/admin/overview"), ("annotator", "/api/review"),
                                       ("annotator", "/admin"), ("reviewer", "/admin"), ("annotator", "/review")])
def test_a_role_too_low_is_403(make_web, role, path):
    web = make_web(seeded=0)
    response = web.client.get(path, headers=web.auth(role))
    assert response.status_code == 403
    assert "this needs the" in response.text and f"is {role}" in response.text


def test_admin_may_do_what_the_others_may(make_web):
    web = make_web(seeded=0)
    for path in ("/api/next", "/api/review", "/api/admin/overview"):
        assert web.client.get(path, headers=web.auth("admin")).status_code == 200


MALFORMED = [
    ("post", "/api/labels", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
    ("post", "/api/labels", {"json": {}}),
    ("post", "/api/labels", {"json": {"id": "i1"}}),
    ("post", "/api/labels", {"json": {"id": ["i1"], "label": "c0"}}),
    ("post", "/api/labels", {"json": {"id": "", "label": "c0"}}),
    ("post", "/api/labels", {"json": {"id": "i1", "label": "c9"}}),
    ("post", "/api/labels", {"json": {"id": "no-such-item", "label": "c0"}}),
    ("post", "/api/labels", {"json": {"id": "i1", "label": "c0", "replace": "perhaps"}}),
    ("post", "/api/labels", {"json": {"id": "x" * 5000, "label": "c0"}}),
    ("post", "/api/labels", {"content": b"id=i1&label=c0", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
    ("post", "/api/skip", {"json": {"id": "no-such-item"}}),
    ("get", "/api/next?n=0", {}),
    ("get", "/api/next?n=abc", {}),
    ("get", "/api/next?n=100000", {}),
    ("post", "/api/review/abc", {"json": {"action": "keep"}}),
    ("post", "/api/review/999", {"json": {"action": "keep"}}),
    ("post", "/api/review/1", {"json": {"action": "burn"}}),
    ("get", "/api/export?format=xlsx", {}),
    ("post", "/api/import", {"files": {"file": ("labels.exe", b"MZ", "application/octet-stream")}}),
    ("post", "/api/import", {"files": {"file": ("labels.csv", b"\xff\xfe\x00bad", "text/csv")}}),
    ("post", "/api/import", {"files": {"file": ("labels.csv", b"id,label\nno-such-item,c0\n", "text/csv")}}),
    ("post", "/api/import", {"files": {"file": ("labels.json", b"[{]", "application/json")}}),
    ("post", "/api/import", {"content": b"not multipart", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}),
]


@pytest.mark.parametrize("method,path,options", MALFORMED)
def test_malformed_requests_get_a_4xx_with_a_message(make_web, method, path, options):
    web = make_web(seeded=0)
    options = {**options, "headers": {**options.get("headers", {}), **web.auth("admin")}}
    response = getattr(web.client, method)(path, **options)
    assert 400 <= response.status_code < 500, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and len(detail) > 10


def test_a_label_outside_the_set_names_the_label_and_the_choices(make_web):
    web = make_web(seeded=0)
    response = web.client.post("/api/labels", json={"id": "i1", "label": "c9"}, headers=web.auth())
    assert response.status_code == 400
    assert "label 'c9' is not in the label set" in response.json()["detail"]
    assert "c0, c1, c2" in response.json()["detail"]


@pytest.fixture
def image_web(tmp_path):
    """An image project (two classes, two tiny images each) with a secret file beside its folder."""
    from fastapi.testclient import TestClient

    from headstart.labeling import init_project
    from headstart.labeling.users import add_user
    from headstart.labeling.web import create_app

    pool = tmp_path / "pool"
    for name in ("cat", "dog"):
        (pool / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (40 * i, 90, 160)).save(pool / name / f"{i}.png")
    (tmp_path / "secret.txt").write_text("TOP SECRET CONTENT")
    (pool / "notes.txt").write_text("not an item")
    project = init_project(pool, labels="cat,dog", db=str(tmp_path / "img.db"), backbone="effnet-lite0")
    (pool / "cat" / "link.png").symlink_to(tmp_path / "secret.txt")  # after init: a link planted later
    token = add_user(project.store, "ana", "annotator")
    with TestClient(create_app(project), base_url="http://127.0.0.1") as client:
        yield client, {"Authorization": f"Bearer {token}"}


def test_media_serves_the_pools_images(image_web):
    client, auth = image_web
    response = client.get("/media/cat/1.png", headers=auth)
    assert response.status_code == 200 and response.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/media/cat/1.png").status_code == 401


@pytest.mark.parametrize("path", ["../secret.txt", "..%2Fsecret.txt", "%2e%2e/secret.txt", "cat/../../secret.txt",
                                  "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/etc/passwd", "%2Fetc%2Fpasswd", "cat/link.png",
                                  "notes.txt", "cat", "cat/9.png"])
def test_media_cannot_read_outside_the_pool_or_files_that_are_not_items(image_web, path):
    client, auth = image_web
    response = client.get(f"/media/{path}", headers=auth)
    assert response.status_code == 404, path
    assert b"TOP SECRET" not in response.content and b"root:" not in response.content


def sign_in_form(client) -> str:
    """GET the sign-in form; returns its one-time value (the client keeps the matching cookie)."""
    page = client.get("/login").text
    return re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)


def test_sign_in_sets_a_strict_http_only_cookie(make_web):
    web = make_web(seeded=0)
    wrong = web.client.post("/login", data={"token": "nope", "login_csrf": sign_in_form(web.client)},
                            follow_redirects=False)
    assert wrong.status_code == 401 and "not valid" in wrong.text
    response = web.client.post("/login", data={"token": web.tokens["annotator"], "login_csrf": sign_in_form(web.client)},
                               follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert web.tokens["annotator"] not in web.client.get("/").text  # the page carries its CSRF token, never the token


def test_another_site_cannot_sign_a_browser_in(make_web):
    web = make_web(seeded=0)
    form = {"token": web.tokens["annotator"], "login_csrf": "made-up"}
    forged = web.client.post("/login", data=form, follow_redirects=False)  # no sign-in cookie: a cross-site post
    assert forged.status_code == 403 and SESSION_COOKIE not in forged.headers.get("set-cookie", "")
    sign_in_form(web.client)
    mismatched = web.client.post("/login", data=form, follow_redirects=False)
    assert mismatched.status_code == 403


def test_responses_carry_security_headers_and_the_api_documents_bearer_auth(make_web):
    web = make_web(seeded=0)
    response = web.client.get("/login")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    schema = web.client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_a_database_that_cannot_be_reached_is_a_503_with_a_message(make_web, monkeypatch):
    from sqlalchemy.exc import OperationalError

    web = make_web(seeded=0)

    def down(*args, **kwargs):
        raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))
    monkeypatch.setattr(web.project.store, "add_label", down)
    response = web.client.post("/api/labels", json={"id": "i1", "label": "c0"}, headers=web.auth())
    assert response.status_code == 503 and "nothing was stored" in response.json()["detail"]


def test_cookie_requests_that_change_something_need_the_csrf_token(make_web):
    from fastapi.testclient import TestClient

    web = make_web()
    with TestClient(web.app, base_url="http://127.0.0.1") as other:
        theirs = web.sign_in("annotator", other)  # another browser's session: its CSRF token is its own
    good = web.sign_in("reviewer")
    item = web.client.get("/api/next?n=1").json()["items"][0]["id"]  # a read needs none
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": theirs},
                    {"X-CSRF-Token": "é".encode("latin-1")}):  # non-ASCII: 403, not a 500
        response = web.client.post("/api/labels", json={"id": item, "label": "c0"}, headers=headers)
        assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert web.project.store.item(item)["labels"] == []
    assert web.client.post("/api/labels", json={"id": item, "label": "c0"},
                           headers={"X-CSRF-Token": good}).status_code == 200
    entry = web.project.store.add_review([(item, "label issue", "", "c1")]) and web.project.store.review_queue()[0]
    form = {"action": "relabel", "label": "c1"}
    forged = web.client.post(f"/review/{entry['review_id']}", data=form, follow_redirects=False)
    assert forged.status_code == 403 and web.project.store.review_queue()
    done = web.client.post(f"/review/{entry['review_id']}", data={**form, "csrf_token": good}, follow_redirects=False)
    assert done.status_code == 303 and not web.project.store.review_queue()
    assert web.client.post("/logout", follow_redirects=False).status_code == 403


def test_bearer_requests_need_no_csrf_token(make_web):
    web = make_web()
    item = web.client.get("/api/next?n=1", headers=web.auth()).json()["items"][0]["id"]
    assert web.client.post("/api/labels", json={"id": item, "label": "c0"}, headers=web.auth()).status_code == 200


def test_uploads_over_the_limit_get_413(make_web):
    web = make_web(seeded=0, max_body_bytes=2000)
    big = "id,label\n" + "i1,c0\n" * 1000
    response = web.client.post("/api/import", files={"file": ("big.csv", big, "text/csv")}, headers=web.auth("admin"))
    assert response.status_code == 413 and "larger than" in response.json()["detail"]

    def chunks():  # no Content-Length: the bytes are counted as they arrive
        for _ in range(10):
            yield b"x" * 500
    streamed = web.client.post("/api/labels", content=chunks(), headers={**web.auth(), "Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert web.project.store.count_labels() == 0
    small = web.client.post("/api/import", files={"file": ("ok.csv", "id,label\ni1,c0\n", "text/csv")},
                            headers=web.auth("admin"))
    assert small.status_code == 200


def test_the_admin_page_import_form_is_size_limited_too(make_web):
    web = make_web(seeded=0, max_body_bytes=2000)
    csrf = web.sign_in("admin")
    response = web.client.post("/admin/import", data={"csrf_token": csrf},
                               files={"file": ("big.csv", "i1,c0\n" * 1000, "text/csv")}, follow_redirects=False)
    assert response.status_code == 413
