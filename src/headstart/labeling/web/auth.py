"""Who is asking: a bearer token (scripts) or the session cookie set at sign-in (the page).

- No token, or an unknown one: 401. A role too low for the route: 403.
- The cookie holds a server-side session id (:mod:`headstart.labeling.sessions`), never the
  long-lived token: logout and token rotation end the session on the server, so a copied cookie
  stops working then. It is HttpOnly, ``SameSite=Strict``, and ``Secure`` when the page is served
  over HTTPS (behind a TLS proxy: ``headstart label serve --behind-proxy``).
- CSRF: a cookie is sent by the browser whatever page makes the request, so a state-changing
  request that signs in with the cookie must also carry its session's CSRF token (header
  ``X-CSRF-Token`` from the page's script, or the form field ``csrf_token``), which a page on another
  site cannot read. A bearer token is never sent by a browser on its own, so bearer requests need
  no CSRF token. The sign-in form itself carries a one-time value that must match a SameSite cookie
  set with the form, so another site cannot sign a browser in under someone else's name.
"""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from headstart.labeling import sessions
from headstart.labeling.project import LabelingProject
from headstart.labeling.users import Person

SESSION_COOKIE = "headstart_session"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# declared for the OpenAPI schema (the /docs page's "Authorize" button); a missing header is not an error here
BEARER = HTTPBearer(auto_error=False, description="a token from `headstart label user add NAME --role ROLE`")
SIGN_IN_HINT = "send 'Authorization: Bearer TOKEN' with a token from `headstart label user add NAME --role ROLE`"


def get_project(request: Request) -> LabelingProject:
    """The project the app was created with (handed in by :func:`create_app`, not a global)."""
    return request.app.state.project


def page_csrf(request: Request) -> str:
    """The CSRF token of the session that signed this request in ("" for bearer or no sign-in)."""
    return getattr(request.state, "csrf", "")


async def current_user(request: Request, project: LabelingProject = Depends(get_project),
                       bearer: HTTPAuthorizationCredentials | None = Security(BEARER)) -> Person:
    if bearer is not None or request.headers.get("authorization"):
        token = bearer.credentials if bearer is not None else None  # another scheme (Basic) is no token
        person = await run_in_threadpool(project.authenticate, token)  # a query: off the event loop
        if person is None:
            what = "no sign-in token was sent" if not token else "the sign-in token is not valid"
            raise HTTPException(401, f"{what}; {SIGN_IN_HINT}", headers={"WWW-Authenticate": "Bearer"})
        return person
    session_id = request.cookies.get(SESSION_COOKIE)
    signed_in = await run_in_threadpool(sessions.look_up, project.store, session_id)
    if signed_in is None:
        what = "no sign-in token was sent" if not session_id else "the session has ended (signed out or expired)"
        raise HTTPException(401, f"{what}; sign in again, or {SIGN_IN_HINT}", headers={"WWW-Authenticate": "Bearer"})
    request.state.csrf = signed_in.csrf
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token")
        if sent is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            sent = (await request.form()).get("csrf_token")
        # bytes: compare_digest refuses str with non-ASCII characters (a TypeError, so a 500)
        if not sent or not hmac.compare_digest(str(sent).encode(), signed_in.csrf.encode()):
            raise HTTPException(403, "the CSRF token is missing or wrong; reload the page and try again")
    return signed_in.person


def require(role: str):
    """A dependency: the signed-in user, who must have ``role`` or a higher one."""
    async def dependency(person: Person = Depends(current_user)) -> Person:
        if not person.may(role):
            raise HTTPException(403, f"this needs the {role} role; '{person.name}' is {person.role} "
                                     "(an admin can add a user with `headstart label user add NAME --role ROLE`)")
        return person
    return dependency
