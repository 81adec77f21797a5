"""A Content-Security-Policy on every response: the page runs only scripts served from this server,
so text or a label name that slipped past escaping still could not run as a script.

Styles may be inline: the admin page's accuracy plot is an inline SVG with style attributes, and a
style cannot run code (Swagger UI on ``/docs`` sets inline styles too). Every page is covered,
``/docs`` included: its Swagger UI is served by the app and started from a file (``docs``).
"""

from __future__ import annotations

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
          "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class ContentSecurityPolicy:
    """ASGI middleware: the :data:`POLICY` header on every response."""

    def __init__(self, app, policy: str = POLICY):
        self.app = app
        self.header = (b"content-security-policy", policy.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_policy(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, with_policy)
