"""End to end in headless Chromium (Debian's ``chromium`` through Playwright): sign in, label ten items
with the keyboard, undo, review a flagged item, watch the admin counts change. Screenshots of each
page go to ``test-artifacts/`` (look at them); the page's own keydown-to-next-item timings go to
``test-artifacts/label_page_timings.json`` (reported, never asserted)."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.server,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium "
                                                               "(apt-get install -y chromium)")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(app):
    """``app`` served by uvicorn on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served(make_web):
    """A ``make_web`` project with two finished fine-tunes (for the admin page's plot), served."""
    web = make_web(n_per_class=12)
    for n_labels, accuracy in ((40, 0.71), (90, 0.83)):
        web.project.store.add_model_version("finetune", status="done", n_labels=n_labels,
                                            metrics={"accuracy": accuracy})
    with serving(web.app) as base:
        yield web, base


@pytest.fixture
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


CSP_VIOLATIONS: list[str] = []  # what the browser refused under the pages' Content-Security-Policy


def sign_in(browser, base: str, token: str, shot: str | None = None):
    page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    page.on("console", lambda message: CSP_VIOLATIONS.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(f"{base}/login")
    if shot:
        page.screenshot(path=str(ARTIFACTS / shot))
    page.fill("#token", token)
    page.click("button[type=submit]")
    return page


def test_label_undo_review_and_admin_in_a_browser(served, browser):
    web, base = served
    ARTIFACTS.mkdir(exist_ok=True)
    store = web.project.store

    page = sign_in(browser, base, web.tokens["annotator"], shot="web-1-login.png")
    page.wait_for_selector("#item-id:has-text('item ')")
    assert page.url == f"{base}/"
    page.screenshot(path=str(ARTIFACTS / "web-2-label.png"))

    labeled = []
    for n in range(10):
        shown = page.inner_text("#item-id").removeprefix("item ")
        suggestion = page.inner_text("#suggest-label").split(" ")[0]
        key = "Enter" if n % 3 == 0 else str(1 + n % len(web.project.classes))
        labeled.append((shown, suggestion if key == "Enter" else web.project.classes[int(key) - 1]))
        page.keyboard.press(key)
        page.wait_for_function("id => document.getElementById('item-id').textContent !== 'item ' + id", arg=shown)
    page.wait_for_selector("#session-text:has-text('10 /')")
    mine = {(r.item, r.label) for r in store.current_labels() if r.annotator == "annotator"}
    assert mine == set(labeled)
    assert page.inner_text("#project-text").startswith(f"{6 + 10} / 36")
    page.screenshot(path=str(ARTIFACTS / "web-3-label-after-ten.png"))

    page.keyboard.press("Backspace")
    page.wait_for_selector("#status:has-text('Undid')")
    last_item, _ = labeled[-1]
    assert page.inner_text("#item-id") == f"item {last_item}"
    assert page.inner_text("#session-text").startswith("9 /")
    assert {(r.item, r.label) for r in store.current_labels() if r.annotator == "annotator"} == set(labeled[:-1])
    # ten labels and the undo, each measured from its key to the painted item (recorded two frames later)
    page.wait_for_function("() => window.headstartTimings.length === 11")
    timings = page.evaluate("window.headstartTimings")
    (ARTIFACTS / "label_page_timings.json").write_text(json.dumps(
        {"what": "ms from keydown to the next item painted (two animation frames), headless Chromium, loopback",
         "ms": [round(t, 1) for t in timings]}, indent=1))

    first_label_item, given = labeled[0]
    other = next(c for c in web.project.classes if c != given)
    store.add_review([(first_label_item, "label issue", f"the model thinks '{other}'", other)])
    admin = sign_in(browser, base, web.tokens["admin"])
    admin.wait_for_selector("#count-labels")
    before = int(admin.inner_text("#count-labels"))
    admin.screenshot(path=str(ARTIFACTS / "web-4-admin.png"), full_page=True)
    assert admin.locator(".plot svg").count() == 1

    reviewer = sign_in(browser, base, web.tokens["reviewer"])
    reviewer.wait_for_selector(".entry")
    reviewer.screenshot(path=str(ARTIFACTS / "web-5-review.png"), full_page=True)
    assert "label issue" in reviewer.inner_text(".entry .reason").lower()
    reviewer.click(f".entry button:has-text('Use “{other}”')")
    reviewer.wait_for_selector(".message:has-text('relabeled')")
    assert [entry["label"] for entry in store.item(first_label_item)["labels"]] == [other]
    assert store.review_queue() == []
    reviewer.screenshot(path=str(ARTIFACTS / "web-6-review-done.png"), full_page=True)

    page.keyboard.press("1")  # the annotator labels again; the admin page counts it
    page.wait_for_selector("#session-text:has-text('10 /')")
    admin.reload()
    assert int(admin.inner_text("#count-labels")) == before + 1
    per_annotator = admin.inner_text("#per-annotator")
    # nine, less the one the reviewer replaced, plus the new one
    assert "annotator\t9" in per_annotator and "reviewer\t1" in per_annotator
    admin.screenshot(path=str(ARTIFACTS / "web-7-admin-after.png"), full_page=True)
    assert CSP_VIOLATIONS == []  # the pages' scripts, styles and the plot all load under the policy


def test_an_image_is_scaled_to_fit_the_page(tmp_path, browser):
    from headstart.labeling import LabelingProject, init_project
    from headstart.labeling.users import add_user
    from headstart.labeling.web import create_app

    pool = tmp_path / "photos"
    for k, name in enumerate(("cat", "dog")):
        (pool / name).mkdir(parents=True)
        for i in range(2):  # larger than the page: 2400 x 1600 pixels
            Image.new("RGB", (2400, 1600), (60 + 90 * k, 120, 200 - 40 * i)).save(pool / name / f"{i}.png")
    store = init_project(pool, labels="cat,dog", db=str(tmp_path / "img.db"), backbone="effnet-lite0").store
    project = LabelingProject(store, features=np.eye(4, dtype=np.float32))  # no backbone needed
    token = add_user(store, "ana", "annotator")
    with serving(create_app(project)) as base:
        page = sign_in(browser, base, token)
        page.wait_for_function("() => document.getElementById('item-image').naturalWidth > 0")
        box = page.locator("#item-image").bounding_box()
        assert box["width"] <= 1366 and box["y"] + box["height"] <= 768
        assert abs(box["width"] / box["height"] - 1.5) < 0.02  # scaled, not stretched
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-8-label-image.png"))


def test_the_shift_page_shows_its_map_under_the_policy(make_web, browser):
    from headstart.labeling.shift_check import check_pool_shift

    web = make_web(n_per_class=20, seeded=0)
    features = np.random.default_rng(4).normal(size=(len(web.project.ids), 8))
    features[30:] += 2.0
    web.project._features = features
    web.project.store.add_labels([(web.project.ids[i], web.project.classes[i % 3], "seed") for i in range(30)])
    assert check_pool_shift(web.project)["shifted"]
    ARTIFACTS.mkdir(exist_ok=True)
    CSP_VIOLATIONS.clear()
    with serving(web.app) as base:
        page = sign_in(browser, base, web.tokens["reviewer"])
        page.wait_for_url(f"{base}/review")
        page.click("nav a[href='/shift']")
        page.wait_for_selector("#shift-auc")
        assert page.evaluate("document.querySelector('#shift-map').naturalWidth") > 300  # the PNG decoded
        assert "differs from the labeled items" in page.inner_text("#shift-verdict")
        page.screenshot(path=str(ARTIFACTS / "web-shift.png"), full_page=True)
    assert not CSP_VIOLATIONS, CSP_VIOLATIONS
