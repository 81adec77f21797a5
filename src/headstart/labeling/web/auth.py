"""Who is asking: a bearer token (scripts) or the session cookie set at sign-in (the page).

- No token, or an unknown one: 401. A role too low for the route: 403.
- CSRF: a cookie is sent by the browser whatever page makes the request, so a state-changing
  request that signs in with the cookie must also carry the session's CSRF token (header
  ``X-CSRF-Token`` from the page's script, or the form field ``csrf_token``), which a page on another
  site cannot read. The cookie is also ``SameSite=Strict``. A bearer token is never sent by a
  browser on its own, so bearer requests need no CSRF token. The sign-in form itself carries a
  one-time value that must match a SameSite cookie set with the form, so another site cannot sign
  a browser in under someone else's name.
"""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from headstart.labeling.project import LabelingProject
from headstart.labeling.users import Person, csrf_token

SESSION_COOKIE = "headstart_session"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# declared for the OpenAPI schema (the /docs page's "Authorize" button); a missing header is not an error here
BEARER = HTTPBearer(auto_error=False, description="a token from `headstart label user add NAME --role ROLE`")


def get_project(request: Request) -> LabelingProject:
    """The project the app was created with (handed in by :func:`create_app`, not a global)."""
    return request.app.state.project


def request_token(request: Request) -> tuple[str | None, bool]:
    """(token, whether it came from the session cookie)."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        return (value.strip() if scheme.lower() == "bearer" else None), False
    return request.cookies.get(SESSION_COOKIE), True


async def current_user(request: Request, project: LabelingProject = Depends(get_project),
                       bearer: HTTPAuthorizationCredentials | None = Security(BEARER)) -> Person:
    token, from_cookie = (bearer.credentials, False) if bearer else request_token(request)
    person = await run_in_threadpool(project.authenticate, token)  # a query: off the event loop
    if person is None:
        what = "no sign-in token was sent" if not token else "the sign-in token is not valid"
        raise HTTPException(401, f"{what}; send 'Authorization: Bearer TOKEN' with a token from "
                                 "`headstart label user add NAME --role ROLE`", headers={"WWW-Authenticate": "Bearer"})
    if from_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token")
        if sent is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            sent = (await request.form()).get("csrf_token")
        if not sent or not hmac.compare_digest(str(sent), csrf_token(token)):
            raise HTTPException(403, "the CSRF token is missing or wrong; reload the page and try again")
    return person


def require(role: str):
    """A dependency: the signed-in user, who must have ``role`` or a higher one."""
    async def dependency(person: Person = Depends(current_user)) -> Person:
        if not person.may(role):
            raise HTTPException(403, f"this needs the {role} role; '{person.name}' is {person.role} "
                                     "(an admin can add a user with `headstart label user add NAME --role ROLE`)")
        return person
    return dependency
