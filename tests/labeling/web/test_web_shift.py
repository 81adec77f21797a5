"""The Shift page: the pool's shift check, shown to reviewers and admins under the page's policy."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def shifted_web(make_web):
    """The web fixture's project, with a stored shift summary (its features moved apart)."""
    from headstart.labeling.shift_check import check_pool_shift

    web = make_web(n_per_class=20, seeded=0)
    project = web.project
    features = np.random.default_rng(4).normal(size=(len(project.ids), 8))
    features[30:] += 2.0
    project._features = features
    project.store.add_labels([(project.ids[i], project.classes[i % 3], "seed") for i in range(30)])
    assert check_pool_shift(project)["shifted"]
    return web


def test_the_shift_page_shows_the_check_to_reviewers_under_the_policy(shifted_web):
    web = shifted_web
    response = web.client.get("/shift", headers=web.auth("reviewer"))
    assert response.status_code == 200
    assert "content-security-policy" in response.headers
    page = response.text
    assert 'id="shift-auc"' in page and "data:image/png;base64," in page
    assert "Most typical of the unlabeled pool" in page and "differs from the labeled items" in page
    assert web.client.get("/shift", headers=web.auth("admin")).status_code == 200
    assert 'href="/shift"' in web.client.get("/", headers=web.auth("reviewer")).text


def test_the_shift_page_is_not_for_annotators_nor_the_signed_out(shifted_web):
    web = shifted_web
    response = web.client.get("/shift", headers=web.auth("annotator"))
    assert response.status_code == 403 and "this needs the reviewer role" in response.text
    assert web.client.get("/shift", follow_redirects=False).headers["location"] == "/login"
    assert 'href="/shift"' not in web.client.get("/", headers=web.auth("annotator")).text


def test_the_shift_page_says_why_there_is_no_check(make_web):
    web = make_web(seeded=0)
    page = web.client.get("/shift", headers=web.auth("reviewer")).text
    assert 'id="shift-skipped"' in page and "no shift check has run" in page


def test_check_again_reruns_the_check_for_a_reviewer_with_the_form_s_token(shifted_web):
    web = shifted_web
    web.project.store.add_labels([(web.project.ids[i], web.project.classes[i % 3], "seed") for i in range(30, 40)])
    csrf = web.sign_in("reviewer")
    assert web.client.post("/shift/check", data={}, follow_redirects=False).status_code == 403   # no token
    response = web.client.post("/shift/check", data={"csrf_token": csrf})
    assert response.status_code == 200
    assert "checked 40 labeled against 20 unlabeled items" in response.text
    assert web.project.settings["shift"]["n_labeled"] == 40


def test_label_shift_checks_again_from_the_command_line(shifted_web, monkeypatch):
    from typer.testing import CliRunner

    from headstart.cli import app
    from headstart.labeling import project as project_module

    web = shifted_web
    features = web.project._features
    real = project_module.LabelingProject.__init__

    def with_features(self, store, **options):  # the command opens the store itself: give it the test's features
        real(self, store, **{**options, "features": features})

    monkeypatch.setattr(project_module.LabelingProject, "__init__", with_features)
    result = CliRunner().invoke(app, ["label", "shift", "--db", web.project.url])
    assert result.exit_code == 0, result.output
    assert "checked 30 labeled against 30 unlabeled items" in result.stdout
    assert result.stderr.startswith("warning: the unlabeled pool differs")
