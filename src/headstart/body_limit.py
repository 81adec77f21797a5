"""A request body's size limit, enforced before anything reads it: a bigger body gets 413.

The labeling server and the prediction server both use it. Starlette reads a body as the client
sends it; :class:`LimitBody` checks ``Content-Length`` first and counts the bytes of a body sent
without one (chunked), so an upload cannot fill memory or disk before it is refused.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException


class BodyTooLarge(HTTPException):
    """Raised while the body is read.

    An HTTPException, so the app answers it as a 413 (FastAPI turns other errors met while parsing a
    body into a 400).
    """

    def __init__(self, message: str):
        super().__init__(413, message)


class LimitBody:
    """ASGI middleware: 413 for a request body over ``limit`` bytes.

    The answer's message ends with ``advice``: what the sender should do instead.
    """

    def __init__(self, app, limit: int, advice: str = "send a smaller body"):
        self.app = app
        self.limit = limit
        self.message = f"the request body is larger than {limit / (1024 * 1024):g} MiB; {advice}"

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
                    raise BodyTooLarge(self.message)
            return message

        async def tracked_send(message):
            nonlocal started
            started |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:  # a response already begun cannot become a 413; the connection just ends
                await self._reject(send)

    async def _reject(self, send) -> None:
        body = json.dumps({"detail": self.message}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
