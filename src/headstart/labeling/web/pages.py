"""The HTML pages: sign-in, labeling (the page's script talks to the JSON API), review and admin.
Forms post with the session's CSRF token (see ``auth``) and redirect back (post/redirect/get)."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from headstart.errors import HeadstartError
from headstart.labeling.project import LabelingProject
from headstart.labeling.users import Person, csrf_token
from headstart.labeling.web import api, review
from headstart.labeling.web.auth import SESSION_COOKIE, current_user, get_project, request_token, require
from headstart.labeling.web.overview import overview
from headstart.labeling.web.redact import public_message

LOGIN_COOKIE = "headstart_login"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)


def render(request: Request, name: str, person: Person | None, status_code: int = 200, **context) -> HTMLResponse:
    token, _ = request_token(request)
    project: LabelingProject = request.app.state.project
    return templates.TemplateResponse(request, name, {
        "user": person, "csrf": csrf_token(token) if person and token else "", "project": project,
        "classes": project.classes, **context}, status_code=status_code)


def login_form(request: Request, status_code: int = 200, error: str = "") -> HTMLResponse:
    """The sign-in form with a fresh one-time value, also set as a SameSite cookie (double submit)."""
    nonce = secrets.token_urlsafe(16)
    response = render(request, "login.html", None, status_code=status_code, error=error, login_csrf=nonce)
    response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return login_form(request)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: str = Form("", max_length=200), login_csrf: str = Form("", max_length=100),
          project: LabelingProject = Depends(get_project)):
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(login_csrf, expected):
        return login_form(request, 403, "The sign-in form has expired or came from another site; sign in again here.")
    person = project.authenticate(token.strip())
    if person is None:
        return login_form(request, 401, "That token is not valid. Ask an admin for one (`headstart label user add`).")
    landing = "/admin" if person.role == "admin" else "/review" if person.role == "reviewer" else "/"
    response = RedirectResponse(landing, status_code=303)
    # HttpOnly: the page's script never needs the token; SameSite=Strict: other sites' requests go without it
    response.set_cookie(SESSION_COOKIE, token.strip(), httponly=True, samesite="strict", max_age=12 * 3600)
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
def logout(person: Person = Depends(current_user)):
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def label_page(request: Request, person: Person = Depends(current_user)) -> HTMLResponse:
    return render(request, "label.html", person)


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, person: Person = Depends(require("reviewer")),
                project: LabelingProject = Depends(get_project)) -> HTMLResponse:
    return render(request, "review.html", person, entries=review.open_entries(project),
                  message=request.query_params.get("message", ""))


@router.post("/review/scan")
def review_scan(request: Request, person: Person = Depends(require("reviewer")),
                project: LabelingProject = Depends(get_project)):
    result = request.app.state.jobs.run("the review scan", review.scan, project)
    found = ", ".join(f"{name} {count}" for name, count in result["found"].items())
    return _back("/review", "; ".join(filter(None, [f"found: {found}" if found else "", *result["notes"]])))


@router.post("/review/{review_id}")
def review_resolve(review_id: int, action: str = Form(...), label: str = Form(""),
                   person: Person = Depends(require("reviewer")), project: LabelingProject = Depends(get_project)):
    if action not in ("keep", "relabel"):
        raise HTTPException(422, f"action '{action}' is unknown; use keep or relabel")
    done = review.resolve(project, review_id, action, label or None, person.name)
    what = f"relabeled '{done['id']}' as {label}" if action == "relabel" else f"kept the labels of '{done['id']}'"
    return _back("/review", what)


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, person: Person = Depends(require("admin")),
               project: LabelingProject = Depends(get_project)) -> HTMLResponse:
    return render(request, "admin.html", person, data=overview(project),
                  message=request.query_params.get("message", ""))


@router.post("/admin/import")
def admin_import(request: Request, file: UploadFile = File(...), person: Person = Depends(require("admin")),
                 project: LabelingProject = Depends(get_project)):
    try:
        result = api.import_file(file, False, person, project)
    except HeadstartError as error:  # the admin page again, with the problem: a 400 as from the API
        return render(request, "admin.html", person, status_code=400, data=overview(project),
                      message=f"nothing imported: {public_message(str(error))}")
    return _back("/admin", f"{result['imported']} label(s) imported from {result['file']}")


def _back(path: str, message: str) -> RedirectResponse:
    from urllib.parse import urlencode

    return RedirectResponse(f"{path}?{urlencode({'message': message})}" if message else path, status_code=303)
