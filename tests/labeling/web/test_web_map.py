"""The Map page: the pool's clusters from its cached features, shown to reviewers and linked from the admin page."""

from __future__ import annotations

import numpy as np


def test_map_the_pool_draws_clusters_for_a_reviewer_with_the_form_s_token(make_web):
    web = make_web(n_per_class=20, seeded=0)
    project = web.project
    rng = np.random.default_rng(3)
    features = rng.normal(size=(len(project.ids), 8)) * 0.3
    features[np.arange(len(project.ids)) % 4 == 1] += np.r_[5.0, np.zeros(7)]   # four planted groups
    features[np.arange(len(project.ids)) % 4 == 2] += np.r_[0.0, 5.0, np.zeros(6)]
    features[np.arange(len(project.ids)) % 4 == 3] += np.r_[0.0, 0.0, 5.0, np.zeros(5)]
    features[np.arange(len(project.ids)) % 4 == 0] += np.r_[0.0, 0.0, 0.0, 5.0, np.zeros(4)]
    project._features = features
    page = web.client.get("/map", headers=web.auth("reviewer")).text
    assert 'id="map-skipped"' in page and "not been mapped yet" in page
    csrf = web.sign_in("reviewer")
    assert web.client.post("/map/check", data={}, follow_redirects=False).status_code == 403   # no token
    response = web.client.post("/map/check", data={"csrf_token": csrf})
    assert response.status_code == 200
    assert f"mapped {len(project.ids)} of {len(project.ids)} items: 4 clusters" in response.text
    assert 'id="map-plot"' in response.text and "data:image/png;base64," in response.text
    assert project.settings["pool_map"]["k"] == 4


def test_the_map_is_linked_from_the_admin_page_and_not_for_annotators(make_web):
    web = make_web(seeded=0)
    assert 'href="/map"' in web.client.get("/admin", headers=web.auth("admin")).text
    assert web.client.get("/map", headers=web.auth("annotator")).status_code == 403
    assert 'href="/map"' not in web.client.get("/", headers=web.auth("annotator")).text
