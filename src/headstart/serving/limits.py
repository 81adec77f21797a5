"""What one request may hold, and the request body's size limit, enforced before anything reads it.

The body limit is checked on ``Content-Length`` first, and on the bytes as they arrive for a body
sent without one (chunked), so an upload cannot fill memory before it is refused with 413.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.exceptions import HTTPException


@dataclass(frozen=True)
class Limits:
    """Bounds of one ``POST /predict`` request.

    Args:
        max_body_bytes: the request body (JSON or every upload together).
        max_items: texts or images in one request.
        max_text_chars: characters of one text (the model reads only its first few hundred tokens).
    """

    max_body_bytes: int = 10 * 1024 * 1024
    max_items: int = 64
    max_text_chars: int = 20_000


def _message(limit: int) -> str:
    return f"the request body is larger than {limit / (1024 * 1024):g} MiB; send fewer or smaller items per request"


class BodyTooLarge(HTTPException):
    """Raised while the body is read; an HTTPException, so the app answers it with 413."""

    def __init__(self, limit: int):
        super().__init__(413, _message(limit))


class LimitBody:
    """ASGI middleware: 413 for a request body over ``limit`` bytes."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        """Answer 413 for a body over the limit, else pass the request on."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._reject(send)
        seen, started = 0, False

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
                await self._reject(send)

    async def _reject(self, send) -> None:
        body = json.dumps({"detail": _message(self.limit)}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
