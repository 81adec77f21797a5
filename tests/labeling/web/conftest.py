"""Fixtures of the web tests: a tiny project with a probe's predictions, users of each role and a client."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass
class Web:
    project: object
    truth: object
    tokens: dict  # role -> token of a user named after the role ("annotator", "reviewer", "admin")
    app: object
    client: object

    def auth(self, role: str = "annotator") -> dict:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def sign_in(self, role: str, client=None) -> str:
        """Sign ``client`` (default: this one) in through the sign-in form, as a browser does; returns
        the session's CSRF token (read from the page, where the page's script reads it)."""
        import re

        client = client or self.client
        nonce = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/login").text).group(1)
        signed = client.post("/login", data={"token": self.tokens[role], "login_csrf": nonce}, follow_redirects=False)
        assert signed.status_code == 303, signed.text
        return re.search(r'name="csrf" content="([^"]+)"', client.get("/").text).group(1)


@pytest.fixture
def make_web(blob_project):
    """``make_web(db=None, n_per_class=10, seeded=6, multi_share=0.0, n_classes=3, **app_options)``: a
    project of blob features (3 classes unless told) whose first ``seeded`` items are imported labels with a probe trained on them (so every item has a
    stored prediction), users annotator/reviewer/admin, and a TestClient over ``create_app``."""
    from fastapi.testclient import TestClient

    from headstart.labeling.retrain import retrain_probe
    from headstart.labeling.users import add_user
    from headstart.labeling.web import create_app

    clients = []

    def make(db: str | None = None, n_per_class: int = 10, seeded: int = 6, multi_share: float = 0.0,
             n_classes: int = 3, **app_options) -> Web:
        project, truth = blob_project(db=db, n_per_class=n_per_class, multi_share=multi_share, n_classes=n_classes)
        if seeded:
            project.store.add_labels([(project.ids[i], project.classes[truth[i]], "seed") for i in range(seeded)])
            retrain_probe(project)
        tokens = {role: add_user(project.store, role, role) for role in ("annotator", "reviewer", "admin")}
        app = create_app(project, **app_options)
        client = TestClient(app, base_url="http://127.0.0.1")
        clients.append(client)
        return Web(project, truth, tokens, app, client)

    yield make
    for client in clients:
        client.close()
