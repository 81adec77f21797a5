"""The labeling pages' newer parts in headless Chromium (as ``test_web_browser``): ``/docs`` with no
network beyond the app and no policy violation, the review page's keys without a page reload, the
label page's key hint, Enter hint and comment, and the admin page's people and guidelines.
Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import re

import pytest

from test_web_browser import ARTIFACTS, CHROMIUM, CSP_VIOLATIONS, browser, serving, sign_in  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.server,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium "
                                                               "(apt-get install -y chromium)")]


@pytest.fixture(autouse=True)
def fresh():
    ARTIFACTS.mkdir(exist_ok=True)
    CSP_VIOLATIONS.clear()
    yield
    assert not CSP_VIOLATIONS, CSP_VIOLATIONS


def test_docs_render_swagger_ui_from_the_app_alone(make_web, browser):
    web = make_web(seeded=0)
    with serving(web.app) as base:
        page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
        page.on("console", lambda m: CSP_VIOLATIONS.append(m.text) if "Content Security Policy" in m.text else None)
        elsewhere = []
        # offline: any request that does not go to the app is refused (and recorded)
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                   else (elsewhere.append(route.request.url), route.abort()))
        page.goto(f"{base}/docs")
        page.wait_for_selector(".opblock-summary-path")
        paths = {text.replace("\u200b", "") for text in page.locator(".opblock-summary-path").all_inner_texts()}
        assert {"/api/next", "/api/labels", "/api/review/{review_id}"} <= paths
        assert "headstart labeling" in page.inner_text(".info .title")
        page.screenshot(path=str(ARTIFACTS / "web-docs.png"))
        assert elsewhere == []


def test_review_keys_resolve_entries_without_a_page_reload(make_web, browser):
    web = make_web(n_per_class=6)
    store, classes = web.project.store, web.project.classes
    items = [web.project.ids[i] for i in (10, 11, 12, 13)]
    for item in items:
        store.add_label(item, classes[0], annotator="ana")
    store.add_review([(item, "label issue", f"the model thinks '{classes[1]}'", classes[1]) for item in items])
    with serving(web.app) as base:
        page = sign_in(browser, base, web.tokens["reviewer"])
        page.wait_for_selector(".entry.selected")
        page.evaluate("window.stillHere = true")  # gone if the page reloads
        page.screenshot(path=str(ARTIFACTS / "web-review-keys.png"), full_page=True)

        page.keyboard.press("Enter")  # the first entry: the suggestion
        page.wait_for_selector("#open-count:has-text('3')")
        page.keyboard.press("ArrowDown")  # past the second, to the third
        page.keyboard.press("c")
        page.keyboard.type("clearly the third class")
        page.keyboard.press("Enter")  # hands the keys back
        page.keyboard.press("3")
        page.wait_for_selector("#open-count:has-text('2')")
        page.keyboard.press("ArrowUp")  # back to the second
        page.keyboard.press("k")
        page.wait_for_selector("#open-count:has-text('1')")
        page.keyboard.press("2")  # the one left
        page.wait_for_selector("#review-empty:visible")
        assert page.evaluate("window.stillHere") is True
        assert "relabeled" in page.inner_text("#review-status")
        page.screenshot(path=str(ARTIFACTS / "web-review-keys-done.png"), full_page=True)

    labels = {item: store.item(item)["labels"] for item in items}
    assert [labels[items[0]][0]["label"], labels[items[1]][0]["label"]] == [classes[1], classes[0]]
    assert (labels[items[2]][0]["label"], labels[items[2]][0]["comment"]) == (classes[2], "clearly the third class")
    assert labels[items[3]][0]["label"] == classes[1]
    assert store.review_queue() == []


def test_the_label_page_hints_match_the_classes_and_the_suggestion(make_web, browser):
    unsure = make_web(seeded=0, n_per_class=3, n_classes=5)  # no model yet: nothing to accept
    with serving(unsure.app) as base:
        page = sign_in(browser, base, unsure.tokens["annotator"])
        page.wait_for_selector("#item-id:has-text('item ')")
        assert re.sub(r"\s+", " ", page.inner_text("#keys")).startswith("1–5 label · Backspace")
        assert not page.is_visible(".enter-hint") and page.inner_text("#suggest-label") == "none yet"
        shown = page.inner_text("#item-id")
        page.keyboard.press("Enter")
        page.keyboard.press("c")
        page.keyboard.type("not sure: c3 or c4")
        page.keyboard.press("Enter")
        page.keyboard.press("4")
        page.wait_for_selector("#status:has-text('with your comment')")
        assert page.locator("#timing").count() == 0 and " ms" not in page.inner_text("main")
        page.screenshot(path=str(ARTIFACTS / "web-label-no-suggestion.png"))
    labels = unsure.project.store.current_labels()
    assert [(r.item, r.label, r.comment) for r in labels] == [(shown.removeprefix("item "), "c3", "not sure: c3 or c4")]

    sure = make_web()  # a probe's predictions: Enter accepts
    with serving(sure.app) as base:
        page = sign_in(browser, base, sure.tokens["annotator"])
        page.wait_for_selector("#item-id:has-text('item ')")
        assert page.is_visible("#keys .enter-hint") and page.is_visible("#suggestion .enter-hint")
        assert re.sub(r"\s+", " ", page.inner_text("#keys")).startswith("1–3 label · Enter accept")


def test_an_admin_manages_people_and_guidelines_in_a_browser(make_web, browser):
    web = make_web()
    with serving(web.app) as base:
        admin = sign_in(browser, base, web.tokens["admin"])
        admin.wait_for_selector("#users")
        admin.fill("#add-user input[name=name]", "zoe")
        admin.select_option("#add-user select[name=role]", "reviewer")
        admin.click("#add-user button")
        token = admin.input_value("#new-token .token-value")
        admin.screenshot(path=str(ARTIFACTS / "web-admin-people.png"), full_page=True)
        assert web.project.authenticate(token).role == "reviewer"

        row = "#users tr[data-user=annotator]"
        admin.select_option(f"{row} select[name=role]", "reviewer")
        admin.click(f"{row} button:has-text('Set')")
        admin.wait_for_selector(".message:has-text('annotator is now reviewer')")
        admin.click(f"{row} button:has-text('Disable')")
        admin.wait_for_selector(f"{row}.disabled")
        assert web.project.authenticate(web.tokens["annotator"]) is None

        admin.fill("#guidelines-editor textarea", "## c0 or c1?\n\n- **c0**: the first blob\n- when unsure, skip")
        admin.click("#guidelines-editor button")
        admin.wait_for_selector(".message:has-text('guidelines saved')")
        admin.goto(f"{base}/")  # the label page: G opens and closes the panel
        admin.wait_for_selector("#item-id:has-text('item ')")
        assert not admin.evaluate("document.getElementById('guidelines').open")
        admin.keyboard.press("g")
        assert admin.evaluate("document.getElementById('guidelines').open")
        assert admin.is_visible("#guidelines li strong")

        zoe = sign_in(browser, base, token)  # the new user signs in with the token the page showed
        zoe.wait_for_url(f"{base}/review")
        zoe.click("#guidelines summary")
        assert zoe.inner_text("#guidelines h2") == "c0 or c1?"
        assert zoe.inner_text("#guidelines li strong") == "c0"
        zoe.screenshot(path=str(ARTIFACTS / "web-guidelines.png"))
