"""The prediction server's Prometheus metrics.

Requests by path and status, their latency, those in progress, items predicted, and the size and
time of each model call (how well micro-batching fills its batches).

Each app has a registry of its own, so two apps in one process (tests) count apart.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# The paths the server answers; anything else is counted as "other", so a scan of random URLs
# cannot grow the number of time series without bound.
KNOWN_PATHS = ("/predict", "/health", "/ready", "/metrics", "/docs", "/openapi.json")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """Counters and histograms of one app, and their text exposition for ``GET /metrics``."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("headstart_requests", "HTTP requests answered, by path and status code.",
                                ["path", "status"], registry=self.registry)
        self.latency = Histogram("headstart_request_seconds", "Time from a request's arrival to its answer.",
                                 ["path"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_progress = Gauge("headstart_requests_in_progress", "Requests received and not yet answered.",
                                 ["path"], registry=self.registry)
        self.items = Counter("headstart_items_predicted", "Items (texts or images) predicted.",
                             registry=self.registry)
        self.batch_items = Histogram("headstart_batch_items", "Items per model call (requests batched together).",
                                     buckets=BATCH_BUCKETS, registry=self.registry)
        self.batch_seconds = Histogram("headstart_batch_seconds", "Time of one model call.",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        """Count a request answered with ``status`` after ``seconds``."""
        path = known_path(path)
        self.requests.labels(path=path, status=str(status)).inc()
        self.latency.labels(path=path).observe(seconds)

    def observe_batch(self, n_items: int, seconds: float) -> None:
        """Count a model call over ``n_items`` items that took ``seconds``."""
        self.items.inc(n_items)
        self.batch_items.observe(n_items)
        self.batch_seconds.observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """(the metrics in Prometheus' text format, its content type)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def known_path(path: str) -> str:
    """``path`` as a metrics label: one of :data:`KNOWN_PATHS`, or ``"other"``."""
    return path if path in KNOWN_PATHS else "other"


class MeasureRequests:
    """ASGI middleware: every HTTP request's status and latency go to ``metrics``.

    A request that ends in an error before answering counts as a 500.
    """

    def __init__(self, app, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        """Pass the request on, counting it."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began, status = time.perf_counter(), 500
        in_progress = self.metrics.in_progress.labels(path=known_path(scope["path"]))
        in_progress.inc()

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            in_progress.dec()
            self.metrics.observe_request(scope["path"], status, time.perf_counter() - began)
