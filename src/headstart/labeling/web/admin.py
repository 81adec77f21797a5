"""The admin page: the project's figures, importing labels, the people who sign in (add one, change
a role, issue a new token, disable or enable) and the labeling guidelines.

A new token is shown once, in the page that answers the form (never in a redirect's URL, which
browsers keep in their history and servers in their logs). Forms carry the session's CSRF token
(``auth``); only admins reach these routes.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse

from headstart.errors import HeadstartError
from headstart.labeling import users as accounts
from headstart.labeling.models import ROLES
from headstart.labeling.project import LabelingProject
from headstart.labeling.users import Person
from headstart.labeling.web import api
from headstart.labeling.web.auth import get_project, require
from headstart.labeling.web.guidelines import guidelines_of, set_guidelines
from headstart.labeling.web.overview import overview
from headstart.labeling.web.pages import back, message_of, render
from headstart.labeling.web.redact import public_message

router = APIRouter(include_in_schema=False)
USER_ACTIONS = ("role", "token", "disable", "enable")


def admin_view(request: Request, person: Person, project: LabelingProject, *, status_code: int = 200,
               message: str = "", token: dict | None = None) -> HTMLResponse:
    response = render(request, "admin.html", person, status_code=status_code, data=overview(project),
                      people=accounts.user_table(project.store), roles=ROLES, markdown=guidelines_of(project),
                      message=message, token=token, runs_finetunes=request.app.state.runs_finetunes)
    if token:
        response.headers["Cache-Control"] = "no-store"  # the token must not stay in a cache
    return response


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, person: Person = Depends(require("admin")),
               project: LabelingProject = Depends(get_project)) -> HTMLResponse:
    return admin_view(request, person, project, message=message_of(request))


@router.post("/admin/import")
def admin_import(request: Request, file: UploadFile = File(...), person: Person = Depends(require("admin")),
                 project: LabelingProject = Depends(get_project)):
    try:
        result = api.import_file(file, False, person, project)
    except HeadstartError as error:  # the admin page again, with the problem: a 400 as from the API
        return admin_view(request, person, project, status_code=400,
                          message=f"nothing imported: {public_message(str(error))}")
    return back("/admin", f"{result['imported']} label(s) imported from {result['file']}")


@router.post("/admin/users")
def add_user(request: Request, name: str = Form(..., max_length=100), role: str = Form("annotator", max_length=20),
             person: Person = Depends(require("admin")), project: LabelingProject = Depends(get_project)):
    token = accounts.add_user(project.store, name.strip(), role)
    return admin_view(request, person, project, message=f"added {name.strip()} ({role})",
                      token={"name": name.strip(), "token": token})


@router.post("/admin/users/{name}")
def change_user(request: Request, name: str, action: str = Form(...), role: str = Form("", max_length=20),
                person: Person = Depends(require("admin")), project: LabelingProject = Depends(get_project)):
    if action not in USER_ACTIONS:
        raise HTTPException(422, f"action '{action}' is unknown; use one of: {', '.join(USER_ACTIONS)}")
    if action == "token":
        token = accounts.new_token(project.store, name)
        return admin_view(request, person, project, token={"name": name, "token": token},
                          message=f"new token for {name}; the old one and their sessions stopped working")
    if action == "role":
        accounts.set_role(project.store, name, role)
        return back("/admin", f"{name} is now {role}")
    accounts.set_disabled(project.store, name, action == "disable")
    return back("/admin", f"{name} is {action}d" + (": signed out, labels kept" if action == "disable" else ""))


@router.post("/admin/guidelines")
def save_guidelines(markdown: str = Form("", max_length=40_000), person: Person = Depends(require("admin")),
                    project: LabelingProject = Depends(get_project)):
    set_guidelines(project, markdown)
    return back("/admin", "guidelines saved" if markdown.strip() else "guidelines removed")
