"""The fit report as a person sees it: opened from disk in headless Chromium, every picture drawn."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium "
                                                               "(apt-get install -y chromium)")]


def test_the_report_of_a_probe_names_the_kept_model_and_draws_every_plot(probe_run):
    playwright_api = pytest.importorskip("playwright.sync_api")
    _, folder = probe_run
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            page.goto((folder / "report.html").as_uri())
            kept = page.inner_text("#kept")
            assert "probe" in kept.lower()
            assert page.is_visible("#calibration") and page.is_visible("#mistakes")
            # Every plot is an inlined PNG that the browser decoded (a broken one has no width).
            widths = page.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
            assert widths and all(w > 0 for w in widths)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report-probe.png"), full_page=True)
        finally:
            chromium.close()
