"""Sign-in that can be revoked: the cookie holds a session id (not the token), logout and token rotation
end the session on the server, CSRF tokens are per session, cookies are Secure over HTTPS, pages send
a Content-Security-Policy with no inline script, and ``?message=`` shows only what the server said."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from headstart.labeling import sessions
from headstart.labeling.web.auth import SESSION_COOKIE


@pytest.fixture
def web(make_web):
    return make_web(seeded=0, n_per_class=3)


def browser(web, base_url: str = "http://127.0.0.1") -> TestClient:
    return TestClient(web.app, base_url=base_url)


def sign_in_response(web, client, role: str):
    nonce = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/login").text).group(1)
    return client.post("/login", data={"token": web.tokens[role], "login_csrf": nonce}, follow_redirects=False)


def test_the_cookie_holds_a_session_id_and_only_its_hash_is_stored(web):
    web.sign_in("annotator")
    cookie = web.client.cookies.get(SESSION_COOKIE)
    assert cookie and cookie != web.tokens["annotator"]
    with web.project.store.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT id_hash, csrf FROM sessions").all()
    assert len(stored) == 1 and cookie not in stored[0][0] and len(stored[0][0]) == 64


def test_logout_ends_the_session_on_the_server_so_a_copied_cookie_stops_working(web):
    csrf = web.sign_in("reviewer")
    cookie = web.client.cookies.get(SESSION_COOKIE)
    thief = browser(web)
    thief.cookies.set(SESSION_COOKIE, cookie)
    assert thief.get("/review", follow_redirects=False).status_code == 200
    assert web.client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert thief.get("/review", follow_redirects=False).headers["location"] == "/login"
    replay = thief.post("/api/labels", json={"id": web.project.ids[0], "label": "c0"}, headers={"X-CSRF-Token": csrf})
    assert replay.status_code == 401 and "session has ended" in replay.json()["detail"]
    assert web.project.store.item(web.project.ids[0])["labels"] == []


def test_a_new_token_ends_the_users_sessions(web):
    web.sign_in("annotator")
    assert web.client.get("/api/status").status_code == 200
    fresh = web.project.new_token("annotator")
    assert web.client.get("/api/status").status_code == 401
    assert web.client.get("/api/status", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_each_session_has_its_own_csrf_token(web):
    first, second = browser(web), browser(web)
    one, two = web.sign_in("annotator", first), web.sign_in("annotator", second)
    assert one != two
    item = web.project.ids[0]
    crossed = first.post("/api/labels", json={"id": item, "label": "c0"}, headers={"X-CSRF-Token": two})
    assert crossed.status_code == 403
    assert first.post("/api/labels", json={"id": item, "label": "c0"}, headers={"X-CSRF-Token": one}).status_code == 200


@pytest.mark.server
def test_sessions_end_and_expire_on_postgresql_too(make_web, postgres_url):
    web = make_web(db=postgres_url, seeded=0, n_per_class=2)
    csrf = web.sign_in("annotator")
    copied = browser(web)
    copied.cookies.set(SESSION_COOKIE, web.client.cookies.get(SESSION_COOKIE))
    assert copied.get("/api/status").status_code == 200
    web.client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert copied.get("/api/status").status_code == 401
    test_an_expired_session_is_refused(web)


def test_an_expired_session_is_refused(web):
    signed_in = sessions.start(web.project.store, web.tokens["annotator"], seconds=-1)
    assert signed_in is not None and sessions.look_up(web.project.store, signed_in.session_id) is None
    client = browser(web)
    client.cookies.set(SESSION_COOKIE, signed_in.session_id)
    assert client.get("/api/status").status_code == 401


def test_cookies_are_secure_over_https_and_behind_a_proxy_that_says_so(web):
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    plain = sign_in_response(web, browser(web), "annotator").headers["set-cookie"].lower()
    assert "secure" not in plain
    secure = sign_in_response(web, browser(web, "https://127.0.0.1"), "annotator").headers["set-cookie"].lower()
    assert "secure" in secure and "httponly" in secure and "samesite=strict" in secure
    # `label serve --behind-proxy`: uvicorn takes the scheme from the proxy's X-Forwarded-Proto
    proxied = TestClient(ProxyHeadersMiddleware(web.app, trusted_hosts="*"), base_url="http://127.0.0.1",
                         headers={"X-Forwarded-Proto": "https"})
    assert "secure" in sign_in_response(web, proxied, "annotator").headers["set-cookie"].lower()


def test_serve_behind_proxy_turns_on_the_proxy_headers(web, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from headstart.cli import app

    seen = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **options: seen.append(options))
    monkeypatch.setattr(type(web.project), "features", lambda self: None)  # no backbone needed to start
    for flags, trusted in (([], False), (["--behind-proxy"], True)):
        result = CliRunner().invoke(app, ["label", "serve", "--no-retrain", *flags, "--db", web.project.store.where])
        assert result.exit_code == 0, result.output
        assert seen[-1]["proxy_headers"] is trusted


def test_pages_send_a_content_security_policy_and_carry_no_inline_script(web):
    web.sign_in("admin")
    for path in ("/login", "/", "/review", "/admin"):
        response = web.client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text), path  # every script is a file
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", response.text), path  # nor inline event handlers
    assert web.client.get("/api/status").headers["content-security-policy"]


def test_only_messages_the_server_set_are_shown(web):
    csrf = web.sign_in("reviewer")
    forged = web.client.get("/review", params={"message": "your token expired: paste it at evil.example"})
    assert forged.status_code == 200 and "evil.example" not in forged.text
    scanned = web.client.post("/review/scan", data={"csrf_token": csrf}, follow_redirects=False)
    location = scanned.headers["location"]
    said = parse_qs(urlsplit(location).query)["message"][0]
    assert said and said in web.client.get(location).text.replace("&#39;", "'")
    tampered = location.replace("message=", "message=evil.example+")
    assert "evil.example" not in web.client.get(tampered).text


def test_a_non_ascii_form_token_is_refused_not_a_500(web):
    client = browser(web)
    client.get("/login")  # the one-time value's cookie is set; the form sends another value
    response = client.post("/login", data={"token": web.tokens["annotator"], "login_csrf": "é"}, follow_redirects=False)
    assert response.status_code == 403 and SESSION_COOKIE not in response.headers.get("set-cookie", "")
