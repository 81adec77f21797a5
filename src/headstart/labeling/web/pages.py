"""The HTML pages: sign-in, labeling and review (their scripts talk to the JSON API), shift, map; the
admin page is in ``admin``. Forms post with the session's CSRF token (see ``auth``) and redirect back (post/redirect/get) with a
``?message=`` that the server signs: a message in a link from elsewhere is not shown."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from headstart.labeling import sessions
from headstart.labeling.project import LabelingProject
from headstart.labeling.users import Person
from headstart.labeling.web import review
from headstart.labeling.web.auth import SESSION_COOKIE, current_user, get_project, page_csrf, require
from headstart.labeling.web.guidelines import guidelines_of, to_html
from headstart.labeling.web.map_view import map_view
from headstart.labeling.web.shift_view import shift_view

LOGIN_COOKIE = "headstart_login"
# per process: a redirect's message is read back by the server that signed it, moments later
MESSAGE_KEY = secrets.token_bytes(32)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)


def render(request: Request, name: str, person: Person | None, status_code: int = 200, **context) -> HTMLResponse:
    project: LabelingProject = request.app.state.project
    guidelines = guidelines_of(project) if person else ""
    return templates.TemplateResponse(request, name, {
        "user": person, "csrf": page_csrf(request) if person else "", "project": project,
        "classes": project.classes, "guidelines": to_html(guidelines) if guidelines else "", **context},
        status_code=status_code)


def login_form(request: Request, status_code: int = 200, error: str = "") -> HTMLResponse:
    """The sign-in form with a fresh one-time value, also set as a SameSite cookie (double submit)."""
    nonce = secrets.token_urlsafe(16)
    response = render(request, "login.html", None, status_code=status_code, error=error, login_csrf=nonce)
    response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", max_age=3600,
                        secure=_https(request))
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return login_form(request)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: str = Form("", max_length=200), login_csrf: str = Form("", max_length=100),
          project: LabelingProject = Depends(get_project)):
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(login_csrf.encode(), expected.encode()):
        return login_form(request, 403, "The sign-in form has expired or came from another site; sign in again here.")
    signed_in = sessions.start(project.store, token.strip())
    if signed_in is None:
        return login_form(request, 401, "That token is not valid. Ask an admin for one (`headstart label user add`).")
    role = signed_in.person.role
    response = RedirectResponse("/admin" if role == "admin" else "/review" if role == "reviewer" else "/",
                                status_code=303)
    # the session id, not the token; HttpOnly: the page's script never needs it; SameSite=Strict: other
    # sites' requests go without it; Secure over HTTPS, so it never travels in plain HTTP after that
    response.set_cookie(SESSION_COOKIE, signed_in.session_id, httponly=True, samesite="strict",
                        max_age=sessions.SESSION_SECONDS, secure=_https(request))
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, person: Person = Depends(current_user), project: LabelingProject = Depends(get_project)):
    sessions.end(project.store, request.cookies.get(SESSION_COOKIE))  # a copy of the cookie stops working too
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS (behind a proxy, uvicorn reads X-Forwarded-Proto)."""
    return request.url.scheme == "https"


@router.get("/", response_class=HTMLResponse)
def label_page(request: Request, person: Person = Depends(current_user)) -> HTMLResponse:
    return render(request, "label.html", person)


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, person: Person = Depends(require("reviewer")),
                project: LabelingProject = Depends(get_project)) -> HTMLResponse:
    return render(request, "review.html", person, entries=review.open_entries(project), message=message_of(request))


@router.post("/review/scan")
def review_scan(request: Request, person: Person = Depends(require("reviewer")),
                project: LabelingProject = Depends(get_project)):
    result = request.app.state.jobs.run("the review scan", review.scan, project)
    found = ", ".join(f"{name} {count}" for name, count in result["found"].items())
    return back("/review", "; ".join(filter(None, [f"found: {found}" if found else "", *result["notes"]])))


@router.post("/review/{review_id}")
def review_resolve(review_id: int, action: str = Form(...), label: str = Form(""), comment: str = Form("", max_length=2000),
                   person: Person = Depends(require("reviewer")), project: LabelingProject = Depends(get_project)):
    if action not in ("keep", "relabel"):
        raise HTTPException(422, f"action '{action}' is unknown; use keep or relabel")
    done = review.resolve(project, review_id, action, label or None, person.name, comment=comment)
    what = f"relabeled '{done['id']}' as {label}" if action == "relabel" else f"kept the labels of '{done['id']}'"
    return back("/review", what)


@router.get("/shift", response_class=HTMLResponse)
def shift_page(request: Request, person: Person = Depends(require("reviewer")),
               project: LabelingProject = Depends(get_project)) -> HTMLResponse:
    return render(request, "shift.html", person, message=message_of(request), **shift_view(project))


@router.post("/shift/check")
def shift_check(request: Request, person: Person = Depends(require("reviewer")),
                project: LabelingProject = Depends(get_project)):
    from headstart.labeling.shift_check import check_pool_shift, shift_message

    summary = request.app.state.jobs.run("the shift check", check_pool_shift, project)
    return back("/shift", shift_message(summary))


@router.get("/map", response_class=HTMLResponse)
def map_page(request: Request, person: Person = Depends(require("reviewer")),
             project: LabelingProject = Depends(get_project)) -> HTMLResponse:
    return render(request, "map.html", person, message=message_of(request), **map_view(project))


@router.post("/map/check")
def map_check(request: Request, person: Person = Depends(require("reviewer")),
              project: LabelingProject = Depends(get_project)):
    from headstart.labeling.pool_map_check import map_message, map_project_pool

    summary = request.app.state.jobs.run("the pool map", map_project_pool, project)
    return back("/map", map_message(summary))


def back(path: str, message: str) -> RedirectResponse:
    query = urlencode({"message": message, "signature": _signature(message)})
    return RedirectResponse(f"{path}?{query}" if message else path, status_code=303)


def _signature(message: str) -> str:
    return hmac.new(MESSAGE_KEY, message.encode("utf-8"), hashlib.sha256).hexdigest()


def message_of(request: Request) -> str:
    """The ``?message=`` of a redirect from this server; "" for one it did not sign (a link from
    elsewhere cannot put words such as "paste your token at ..." on the page)."""
    message, signature = request.query_params.get("message", ""), request.query_params.get("signature", "")
    return message if message and hmac.compare_digest(signature.encode(), _signature(message).encode()) else ""
