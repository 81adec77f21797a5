"""The API documentation at ``/docs`` without a network: Swagger UI's files are served by the app.

FastAPI's own ``/docs`` loads Swagger UI from a CDN (a blank page on a machine without internet) and
starts it with an inline script, which the Content-Security-Policy (``csp``) forbids. Here the
files come from the ``fastapi-offline`` package (Swagger UI 5, which reads OpenAPI 3.1) under
``/static/swagger/``, and our own ``/static/docs.js`` starts it, so the page is under the policy
like every other page. ``/openapi.json`` shows routes and fields, no project data.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from markupsafe import escape

SWAGGER_URL = "/static/swagger"


def swagger_files() -> Path | None:
    """The folder of Swagger UI's script and style sheet, or None when fastapi-offline is missing."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def serve_docs(app: FastAPI) -> None:
    """Add ``/docs`` (and Swagger UI's files) to ``app``."""
    files = swagger_files()
    if files is not None:  # mounted before /static, so it is not looked up in the app's own folder
        app.mount(SWAGGER_URL, StaticFiles(directory=files), name="swagger")

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        if files is None:
            return HTMLResponse("<!doctype html><title>API documentation</title><p>The API documentation needs "
                                "the fastapi-offline package: pip install 'headstart[label]'. The schema is at "
                                f"<a href='{escape(root)}/openapi.json'>/openapi.json</a>.</p>", status_code=503)
        title = escape(app.title)
        return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · API</title>
<link rel="stylesheet" href="{root}{SWAGGER_URL}/swagger-ui.css">
<link rel="icon" href="{root}{SWAGGER_URL}/favicon.png"></head>
<body><div id="swagger-ui" data-openapi="{escape(root)}{escape(app.openapi_url)}"></div>
<script src="{root}{SWAGGER_URL}/swagger-ui-bundle.js"></script>
<script src="{root}/static/docs.js"></script></body></html>""")
