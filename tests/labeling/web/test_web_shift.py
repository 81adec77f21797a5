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
