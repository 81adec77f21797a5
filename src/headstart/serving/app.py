"""The prediction server's app: predict, health, readiness, metrics and the OpenAPI page.

It answers ``POST /predict``, ``GET /health``, ``GET /ready``, ``GET /metrics`` and ``/docs``.

    app = create_app(lambda: headstart.load("runs/reviews"))   # serve with uvicorn; see serving.server

The model loads in a background thread when the app starts, so the process answers ``/health`` at
once and ``/ready`` with 503 until the model is loaded. Anything with ``classes`` and
``predict_proba(list of items) -> array (n, classes)`` serves: a model folder's
:class:`~headstart.model.Model`, or what ``headstart.load`` gives for an exported folder. Requests
go through a :class:`~headstart.serving.batching.MicroBatcher`, whose one thread runs the model.
"""

from __future__ import annotations

import tempfile
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from headstart.errors import HeadstartError
from headstart.serving.batching import MicroBatcher
from headstart.serving.inputs import body_kind, read_texts, save_images
from headstart.body_limit import LimitBody
from headstart.serving.limits import Limits
from headstart.serving.metrics import MeasureRequests, ServerMetrics

DRAIN_SECONDS = 30.0  # how long a stopping server lets the queued requests finish


class Prediction(BaseModel):
    """One item's predicted label and the probability of every class."""

    label: str
    probabilities: dict[str, float]


_REQUEST_BODY = {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "required": ["texts"], "properties": {
        "texts": {"type": "array", "items": {"type": "string"}, "description": "texts to classify"}}},
        "example": {"texts": ["The sync keeps failing", "Please refund my invoice"]}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "images": {"type": "array", "items": {"type": "string", "format": "binary"},
                   "description": "image files to classify"}}}}}}


class ServingState:
    """The model's life in the app: loading, loaded (with its batcher) or failed."""

    def __init__(self, load_model: Callable[[], Any], *, batching: bool, max_batch_items: int, max_wait: float,
                 metrics: ServerMetrics, on_load_error: Callable[[BaseException], None] | None):
        self.load_model, self.metrics, self.on_load_error = load_model, metrics, on_load_error
        self.batch_options = {"max_items": max_batch_items if batching else 0, "max_wait": max_wait}
        self.predictor: Any = None
        self.modality: str | None = None
        self.batcher: MicroBatcher | None = None
        self.error: str | None = None

    def start_loading(self) -> None:
        """Load the model in a background thread; the batcher starts once it is loaded."""
        threading.Thread(target=self._load, name="headstart-load", daemon=True).start()

    def _load(self) -> None:
        try:
            predictor = self.load_model()
        except Exception as error:  # noqa: BLE001 - said by /ready, and handed to on_load_error
            self.error = str(error) if isinstance(error, HeadstartError) else f"{type(error).__name__}: {error}"
            if self.on_load_error is not None:
                self.on_load_error(error)
            return
        self.modality = _modality(predictor)
        self.predictor = predictor
        self.batcher = MicroBatcher(lambda items: np.asarray(predictor.predict_proba(items)),
                                    on_batch=self.metrics.observe_batch, **self.batch_options).start()

    def ready_batcher(self) -> MicroBatcher:
        """The loaded model's batcher.

        Raises:
            HTTPException: 503 while the model loads, or after it failed to load.
        """
        if self.batcher is None:
            raise HTTPException(503, f"the model failed to load: {self.error}" if self.error
                                else "the model is still loading; GET /ready answers 200 once it is loaded")
        return self.batcher


def _modality(predictor) -> str | None:
    """'text' or 'image' where the predictor tells (``modality``, or its backbone's); None accepts both."""
    modality = getattr(predictor, "modality", None) or getattr(getattr(predictor, "backbone", None), "modality", None)
    return modality if modality in ("text", "image") else None


def create_app(load_model: Callable[[], Any], *, batching: bool = True, max_batch_items: int = 64,
               max_wait: float = 0.005, limits: Limits = Limits(),
               on_load_error: Callable[[BaseException], None] | None = None) -> FastAPI:
    """The prediction app over the model that ``load_model()`` returns.

    Args:
        load_model: called once, in a background thread at startup: returns the predictor.
        batching: batch requests that arrive together into one model call; False: one call each.
        max_batch_items: the most items in one model call.
        max_wait: seconds the model's thread waits for more requests to join a batch.
        limits: the largest request body, items per request and characters per text.
        on_load_error: called with the error when ``load_model`` fails (the command stops the server).
    """
    metrics = ServerMetrics()
    state = ServingState(load_model, batching=batching, max_batch_items=max_batch_items, max_wait=max_wait,
                         metrics=metrics, on_load_error=on_load_error)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start_loading()
        yield
        if state.batcher is not None:  # the server has waited for requests in flight; finish the queue
            state.batcher.stop(timeout=DRAIN_SECONDS)

    app = FastAPI(title="headstart prediction server", lifespan=lifespan,
                  description="Class probabilities from a headstart model: POST JSON texts, or upload images.")
    app.state.serving = state
    app.add_middleware(LimitBody, limit=limits.max_body_bytes, advice="send fewer or smaller items per request")
    app.add_middleware(MeasureRequests, metrics=metrics)

    @app.get("/health")
    def health() -> dict:
        """The process is up (the model may still be loading)."""
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"description": "the model is loading, or failed to load"}})
    def ready() -> JSONResponse:
        """200 once the model is loaded and takes requests, 503 until then."""
        if state.batcher is None:
            status = "failed" if state.error else "loading"
            return JSONResponse({"status": status, "detail": state.error}, status_code=503)
        return JSONResponse({"status": "ready", "classes": list(state.predictor.classes),
                             "modality": state.modality})

    @app.get("/metrics")
    def prometheus() -> Response:
        """Request counts and latencies, items predicted and batch sizes, in Prometheus' text format."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.post("/predict", response_model=list[Prediction], openapi_extra={"requestBody": _REQUEST_BODY},
              responses={413: {"description": "too many items, or a body over the size limit"},
                         415: {"description": "neither JSON nor multipart"},
                         422: {"description": "an item is not a non-empty text or a readable image"},
                         503: {"description": "the model is not loaded yet"}})
    async def predict(request: Request) -> list[dict]:
        """Predict each item: JSON ``{"texts": [...]}`` for a text model, uploaded image files for an image model."""
        kind = body_kind(request)
        batcher = state.ready_batcher()
        if state.modality is not None and kind != f"{state.modality}s":
            send = ('JSON {"texts": [...]}' if state.modality == "text"
                    else "images as multipart/form-data files")
            raise HTTPException(422, f"this model classifies {state.modality}s, not {kind}: send {send}")
        if kind == "texts":
            return _predictions(await _predicted(batcher, await read_texts(request, limits)), state.predictor.classes)
        with tempfile.TemporaryDirectory(prefix="headstart-upload-") as folder:  # removed once answered
            paths = await save_images(request, limits, Path(folder))
            return _predictions(await _predicted(batcher, paths), state.predictor.classes)

    return app


async def _predicted(batcher: MicroBatcher, items: list[str]) -> np.ndarray:
    try:
        return await batcher.predict(items)
    except HeadstartError as error:  # an item the model cannot take, found while predicting
        raise HTTPException(422, str(error)) from None


def _predictions(proba: np.ndarray, classes) -> list[dict]:
    classes = list(classes)
    return [{"label": classes[int(row.argmax())], "probabilities": dict(zip(classes, map(float, row)))}
            for row in proba]
