"""The app factory: the project is handed in, so tests and the server can give it any store.

    app = create_app(project)            # serve with uvicorn; see `headstart label serve`

Errors: a :class:`~headstart.errors.HeadstartError` (an unknown item, a label outside the set) is a
400 with its one-line message (409 for a conflicting label, 403 for a change the role does not
allow), a malformed request is a 422 naming the field, a body over the limit a 413, a database that
cannot be reached a 503, and so is a long job that is busy or over its time limit
(:mod:`~headstart.labeling.web.jobs`). The API answers ``{"detail": message}``; the pages show the
message (and send a signed-out browser to the sign-in page).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from headstart.errors import HeadstartError, LabelConflictError, LabelingError, NotAllowedError
from headstart.labeling.project import LabelingProject
from headstart.labeling.strategies import STRATEGIES
from headstart.labeling.web import admin, api, docs, pages
from headstart.labeling.web.assign import Assignments
from headstart.labeling.web.csp import ContentSecurityPolicy
from headstart.labeling.web.jobs import DEFAULT_TIME_LIMIT, LongJobs
from headstart.body_limit import LimitBody
from headstart.labeling.web.limits import BODY_ADVICE, MAX_BODY_BYTES, ResponseHeaders
from headstart.labeling.web.redact import public_message


def create_app(project: LabelingProject, *, strategy: str = "default", lease_seconds: float = 600.0,
               retrain: bool = False, finetune_out: str | Path | None = None,
               retrainer: Callable[..., Any] | None = None, max_body_bytes: int = MAX_BODY_BYTES,
               job_time_limit: float = DEFAULT_TIME_LIMIT) -> FastAPI:
    """The labeling app over ``project``.

    Args:
        strategy: the active-learning strategy that orders the items (see ``headstart label next``).
        lease_seconds: how long a fetched item stays with its annotator before others get it.
        retrain: retrain the probe as labels arrive (``retrain_every``).
        finetune_out: with ``retrain``, the folder where the server runs queued fine-tunes (one at a
            time, beside the probe's retrains) and saves their models; None: it runs none, a separate
            worker does (``headstart label retrain --watch``).
        retrainer: with ``retrain``, what retrains: called with the project and ``out_root=finetune_out``
            when the server starts; what it returns gets ``start()``, ``notify()`` after each label, and
            ``stop()`` at the end. Default: :class:`~headstart.labeling.retrain.BackgroundRetrainer`.
        max_body_bytes: the largest request body (uploads included); bigger ones get 413.
        job_time_limit: seconds a long job (the review scan) may take before its request gets 503.
    """
    if strategy != "default" and strategy not in STRATEGIES:  # say so now, not at the first batch
        raise LabelingError(f"unknown strategy '{strategy}'", where="--strategy",
                            fix=f"use default or one of: {', '.join(STRATEGIES)}")
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if retrain:
            from headstart.labeling.retrain import BackgroundRetrainer

            app.state.retrainer = (retrainer or BackgroundRetrainer)(project, out_root=finetune_out).start()
        yield
        if app.state.retrainer is not None:
            app.state.retrainer.stop(timeout=3)  # a retrain in progress must not hold up a stopping server

    app = FastAPI(title=f"headstart labeling: {project.name}", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Label items with a model's help. Send `Authorization: Bearer TOKEN` "
                              "(a token from `headstart label user add NAME --role ROLE`).")
    app.state.project = project
    app.state.assignments = Assignments(project, strategy=strategy, lease_seconds=lease_seconds)
    app.state.retrainer = None
    app.state.runs_finetunes = retrain and finetune_out is not None  # what the admin page tells
    app.state.jobs = LongJobs(time_limit=job_time_limit)
    app.add_middleware(LimitBody, limit=max_body_bytes, advice=BODY_ADVICE)
    app.add_middleware(ResponseHeaders)
    app.add_middleware(ContentSecurityPolicy)
    app.include_router(api.router)
    app.include_router(api.media)
    app.include_router(pages.router)
    app.include_router(admin.router)
    docs.serve_docs(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    _handle_errors(app)
    return app


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith(("/api/", "/media/", "/static/"))


def _answer(request: Request, status: int, message: str, headers: dict | None = None):
    message = public_message(message)  # a file's name, never where the server keeps it
    if _is_page(request):
        if status == 401 and request.method == "GET":
            return RedirectResponse("/login", status_code=303)
        return pages.render(request, "error.html", None, status_code=status, message=message)
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _handle_errors(app: FastAPI) -> None:
    @app.exception_handler(HeadstartError)
    async def headstart_error(request: Request, error: HeadstartError):
        status = 409 if isinstance(error, LabelConflictError) else 403 if isinstance(error, NotAllowedError) else 400
        return _answer(request, status, str(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return _answer(request, error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(OperationalError)
    async def database_down(request: Request, error: OperationalError):
        return _answer(request, 503, f"the database is not reachable ({type(error.orig).__name__}); nothing was "
                                     "stored; try again in a moment, and check that the database server is running")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        problems = []
        for problem in error.errors():
            field = ".".join(str(part) for part in problem.get("loc", ()) if part != "body") or "body"
            problems.append(f"{field}: {problem.get('msg', 'invalid')}")
        return _answer(request, 422, "; ".join(problems) + " (see /docs for the request's fields)")

    # The schema documents that answer as it is, {"detail": message}, not as FastAPI's list of problems.
    build_schema = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            components = build_schema().get("components", {}).get("schemas", {})
            if "HTTPValidationError" in components:
                components["HTTPValidationError"] = {"title": "HTTPValidationError", "type": "object",
                                                     "properties": {"detail": {"title": "Detail", "type": "string"}},
                                                     "required": ["detail"]}
        return app.openapi_schema

    app.openapi = openapi
