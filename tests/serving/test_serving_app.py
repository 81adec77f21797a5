"""The prediction app in-process (Starlette's TestClient): predictions equal the model's own, the
health, readiness, metrics and documentation routes, and a 4xx with a message for each kind of bad
input, never a 500."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

import headstart
from headstart.backbones import create_backbone
from headstart.errors import ModelError
from headstart.learn.head import LinearHead
from headstart.model import Model
from headstart.serving.app import create_app
from headstart.serving.limits import Limits

TEXTS = ["the team won the match", "spicy pasta with cheese sauce", "my laptop battery and screen"]


def wait_until_loaded(client: TestClient) -> dict:
    """Poll /ready until the model has loaded (bounded; no timing is asserted)."""
    for _ in range(1200):
        answer = client.get("/ready")
        if answer.status_code == 200:
            return answer.json()
        assert answer.json()["status"] == "loading", answer.json()
        time.sleep(0.05)
    raise AssertionError("the model did not load")


@pytest.fixture(scope="module")
def text_client(probe_run):
    _, folder = probe_run
    with TestClient(create_app(lambda: headstart.load(folder), limits=Limits(max_items=8, max_text_chars=500,
                                                                             max_body_bytes=64 * 1024))) as client:
        wait_until_loaded(client)
        yield client


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    backbone = create_backbone("timm:resnet18", pretrained=False, image_size=32)
    rng = np.random.default_rng(0)
    head = LinearHead(rng.normal(0, 0.1, (3, 512)).astype(np.float32), np.zeros(3, np.float32))
    return Model(backbone, head, ["blue", "dark", "red"], backbone_options={"image_size": 32})


@pytest.fixture(scope="module")
def image_client(image_model):
    with TestClient(create_app(lambda: image_model, limits=Limits(max_items=4))) as client:
        wait_until_loaded(client)
        yield client


def test_text_predictions_are_the_models_own(text_client, probe_run):
    model, _ = probe_run
    answer = text_client.post("/predict", json={"texts": TEXTS})
    assert answer.status_code == 200, answer.text
    expected = model.predict_proba(TEXTS)
    for row, probabilities in zip(answer.json(), expected):
        assert list(row["probabilities"]) == model.classes
        np.testing.assert_allclose(list(row["probabilities"].values()), probabilities, atol=1e-6)
        assert row["label"] == model.classes[int(probabilities.argmax())]


def test_health_ready_docs_and_metrics(text_client, probe_run):
    model, _ = probe_run
    assert text_client.get("/health").json() == {"status": "ok"}
    assert text_client.get("/ready").json() == {"status": "ready", "classes": model.classes, "modality": "text"}
    assert text_client.get("/docs").status_code == 200
    schema = text_client.get("/openapi.json").json()["paths"]["/predict"]["post"]
    assert set(schema["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    before = text_client.get("/metrics").text
    text_client.post("/predict", json={"texts": TEXTS[:2]})
    text_client.post("/predict", json={"texts": [""]})
    metrics = text_client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")

    def value(text: str, name: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{")]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    after = metrics.text
    assert value(after, "headstart_items_predicted_total") == value(before, "headstart_items_predicted_total") + 2
    ok = 'headstart_requests_total{path="/predict",status="200"}'
    bad = 'headstart_requests_total{path="/predict",status="422"}'
    assert value(after, ok) == value(before, ok) + 1 and value(after, bad) == value(before, bad) + 1
    assert 'headstart_request_seconds_bucket{le="0.005",path="/predict"}' in after
    assert "headstart_batch_items_bucket" in after


BAD_TEXT_REQUESTS = {
    "not JSON": ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "not JSON"),
    "no texts field": ({"json": {"text": "one"}}, 422, '"texts"'),
    "texts not a list": ({"json": {"texts": "one text"}}, 422, "not a non-empty list"),
    "empty list": ({"json": {"texts": []}}, 422, "not a non-empty list"),
    "a number": ({"json": {"texts": ["fine", 3]}}, 422, "texts[1] is a number"),
    "a null": ({"json": {"texts": [None]}}, 422, "texts[0] is a null"),
    "an empty text": ({"json": {"texts": ["fine", "   "]}}, 422, "texts[1] is empty"),
    "a lone surrogate": ({"content": b'{"texts": ["fine", "\\ud800 hello"]}',
                          "headers": {"content-type": "application/json"}}, 422, "texts[1] holds an unpaired"),
    "a text too long": ({"json": {"texts": ["x" * 501]}}, 422, "at most 500"),
    "too many items": ({"json": {"texts": ["a"] * 9}}, 413, "at most 8 per request"),
    "a body too large": ({"json": {"texts": ["word " * 20] * 8 * 100}}, 413, "larger than"),
    "a JSON list": ({"json": ["a text"]}, 422, '"texts"'),
    "plain text": ({"content": b"a text", "headers": {"content-type": "text/plain"}}, 415, "text/plain"),
    "images to a text model": ({"files": {"images": ("a.png", b"png", "image/png")}}, 422,
                               "classifies texts, not images"),
    "deeply nested JSON": ({"content": b"[" * 100_000 + b"]" * 100_000,
                            "headers": {"content-type": "application/json"}}, 413, "larger than"),
    "nested JSON under the limit": ({"content": b'{"texts": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
                                     "headers": {"content-type": "application/json"}}, 422, None),
}


@pytest.mark.parametrize("case", BAD_TEXT_REQUESTS, ids=list(BAD_TEXT_REQUESTS))
def test_each_bad_text_request_gets_a_4xx_with_a_message(text_client, case):
    request, status, fragment = BAD_TEXT_REQUESTS[case]
    answer = text_client.post("/predict", **request)
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and (fragment is None or fragment in detail), detail


def _png(rgb, size: int = 32) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploaded_images_get_the_models_own_predictions(image_client, image_model, image_folder):
    paths = sorted(image_folder.rglob("*.png"))[::9]
    files = [("images", (path.name, path.read_bytes(), "image/png")) for path in paths]
    answer = image_client.post("/predict", files=files)
    assert answer.status_code == 200, answer.text
    expected = image_model.predict_proba([str(p) for p in paths])
    got = np.array([list(row["probabilities"].values()) for row in answer.json()])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert image_client.get("/ready").json()["modality"] == "image"


BAD_IMAGE_REQUESTS = {
    "a corrupt image": ({"files": [("images", ("ok.png", _png((200, 0, 0)), "image/png")),
                                   ("images", ("broken.png", _png((0, 0, 200))[:60], "image/png"))]},
                        422, "file 1 (broken.png) is not a readable image"),
    "not an image at all": ({"files": {"images": ("notes.txt", b"hello", "text/plain")}}, 422,
                            "file 0 (notes.txt) is not a readable image"),
    "too many images": ({"files": [("images", (f"{i}.png", _png((9, 9, 9)), "image/png")) for i in range(5)]},
                        413, "at most 4 per request"),
    "a form without files": ({"files": {"images": (None, "not a file")}}, 422, "no files"),
    "texts to an image model": ({"json": {"texts": ["a red thing"]}}, 422, "classifies images, not texts"),
}


@pytest.mark.parametrize("case", BAD_IMAGE_REQUESTS, ids=list(BAD_IMAGE_REQUESTS))
def test_each_bad_image_request_gets_a_4xx_with_a_message(image_client, case):
    request, status, fragment = BAD_IMAGE_REQUESTS[case]
    answer = image_client.post("/predict", **request)
    assert answer.status_code == status, answer.text
    assert fragment in answer.json()["detail"]


def test_ready_is_503_until_the_model_has_loaded():
    loaded = threading.Event()

    class Constant:
        classes = ["no", "yes"]

        def predict_proba(self, items):
            return np.tile([0.25, 0.75], (len(items), 1))

    def load():
        assert loaded.wait(30)
        return Constant()

    with TestClient(create_app(load)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 503
        answer = client.post("/predict", json={"texts": ["a"]})
        assert answer.status_code == 503 and "still loading" in answer.json()["detail"]
        loaded.set()
        assert wait_until_loaded(client)["modality"] is None  # no modality known: both kinds are taken
        answer = client.post("/predict", json={"texts": ["a", "b"]})
        assert answer.json() == [{"label": "yes", "probabilities": {"no": 0.25, "yes": 0.75}}] * 2


def test_a_model_that_fails_to_load_is_said_by_ready_and_predict(tmp_path):
    failures = []
    app = create_app(lambda: headstart.load(tmp_path), on_load_error=failures.append)
    with TestClient(app) as client:
        for _ in range(1200):
            if failures:
                break
            time.sleep(0.05)
        assert isinstance(failures[0], ModelError)
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "failed"
        assert "not a headstart model folder" in ready.json()["detail"]
        answer = client.post("/predict", json={"texts": ["a"]})
        assert answer.status_code == 503 and "failed to load" in answer.json()["detail"]
