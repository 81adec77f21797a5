"""The labeling server's limits and headers: request bodies are size-limited before anything reads
them (:class:`headstart.body_limit.LimitBody`, with the advice below); every response gets a
server-timing header and a few security headers.
"""

from __future__ import annotations

import time

MAX_BODY_BYTES = 10 * 1024 * 1024


BODY_ADVICE = "send a smaller file (split it, or import it with `headstart label import`)"


SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"),  # a served file is never run as another type
                    (b"x-frame-options", b"DENY"),  # no other site can frame the page and catch its keys
                    (b"referrer-policy", b"same-origin")]


class ResponseHeaders:
    """ASGI middleware: a ``Server-Timing: app;dur=<ms>`` header on every response, so the page and the
    load test can tell the server's share of a request's time from the network's, and the
    :data:`SECURITY_HEADERS`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began = time.perf_counter()

        async def timed_send(message):
            if message["type"] == "http.response.start":
                spent = (time.perf_counter() - began) * 1000
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS,
                                                  (b"server-timing", f"app;dur={spent:.2f}".encode())]}
            await send(message)

        await self.app(scope, receive, timed_send)
