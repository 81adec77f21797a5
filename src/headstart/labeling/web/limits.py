"""Request bodies are size-limited before anything reads them: a bigger body gets 413. Every
response gets a server-timing header and a few security headers.

Starlette reads a body as the client sends it; this middleware checks ``Content-Length`` first and
counts the bytes of a body sent without one (chunked), so an upload cannot fill memory or disk.
"""

from __future__ import annotations

import json
import time

from starlette.exceptions import HTTPException

MAX_BODY_BYTES = 10 * 1024 * 1024


def _message(limit: int) -> str:
    return (f"the request body is larger than {limit / (1024 * 1024):g} MiB; send a smaller file "
            "(split it, or import it with `headstart label import`)")


class BodyTooLarge(HTTPException):
    """Raised while the body is read; an HTTPException, so the app answers it as a 413 (FastAPI turns
    other errors met while parsing a body into a 400)."""

    def __init__(self, limit: int):
        super().__init__(413, _message(limit))


def _reject(limit: int):
    body = json.dumps({"detail": _message(limit)}).encode()
    start = {"type": "http.response.start", "status": 413,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, {"type": "http.response.body", "body": body}


class LimitBody:
    """ASGI middleware: 413 for a request body over ``limit`` bytes."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            for message in _reject(self.limit):
                await send(message)
            return
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracked_send(message):
            nonlocal started
            started |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                for message in _reject(self.limit):
                    await send(message)


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
