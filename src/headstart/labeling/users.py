"""Users of the web page: a name, a role and a sign-in token.

    token = add_user(store, "ana", "annotator")   # shown once; only its sha256 is stored
    user = authenticate(store, token)             # None for an unknown token

An admin manages them on the admin page or with ``headstart label user``: add, change a role, issue
a new token, disable (the user can no longer sign in; their labels stay) and enable again.

Tokens are 256 random bits, so a plain sha256 is enough to store them (a slow password hash
guards guessable secrets; these are not guessable), and a lookup is one indexed query.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from headstart.errors import LabelingError
from headstart.labeling.models import ROLES, User, utcnow
from headstart.labeling.models import Session as SignIn

# used with fullmatch: "$" would also match before a trailing newline, letting "ana\n" in
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")


@dataclass(frozen=True)
class Person:
    """A signed-in user (a plain value: no database session attached)."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this user has ``role`` or a role above it (admin > reviewer > annotator)."""
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(store, name: str, role: str) -> str:
    """Create a user and return their new token (the only time it is shown). Raises LabelingError for
    a bad name or role, or a name already taken."""
    if not NAME.fullmatch(name or ""):
        raise LabelingError(f"user name '{name}' is not allowed", where="NAME",
                            fix="use letters, digits and . _ @ - (at most 100 characters)")
    if role not in ROLES:
        raise LabelingError(f"unknown role '{role}'", where="--role", fix=f"use one of: {', '.join(ROLES)}")
    token = secrets.token_urlsafe(32)
    try:
        with store.writing() as session:
            session.add(User(name=name, role=role, token_hash=hash_token(token), created_at=utcnow()))
    except IntegrityError as error:
        raise LabelingError(f"user '{name}' exists already", where="NAME",
                            fix="choose another name, or `headstart label user token NAME` for a new token") from error
    return token


def _user(session, name: str) -> User:
    user = session.scalars(select(User).where(User.name == name)).first()
    if user is None:
        raise LabelingError(f"no user '{name}'", where="NAME", fix="add them with `headstart label user add`")
    return user


def _end_sessions(session, user: User) -> None:
    session.execute(update(SignIn).where(SignIn.user_id == user.id, SignIn.ended_at.is_(None))
                    .values(ended_at=utcnow()))


def new_token(store, name: str) -> str:
    """Replace a user's token and return the new one. The old token stops working, and so do the
    browser sessions signed in with it (a leaked token or cookie is revoked in one step)."""
    token = secrets.token_urlsafe(32)
    with store.writing() as session:
        user = _user(session, name)
        user.token_hash = hash_token(token)
        _end_sessions(session, user)
    return token


def set_role(store, name: str, role: str) -> None:
    """Give a user another role; it applies to their next request (sessions read the role each time).
    The last admin who can sign in keeps the role, so the project is never left without one."""
    if role not in ROLES:
        raise LabelingError(f"unknown role '{role}'", where="role", fix=f"use one of: {', '.join(ROLES)}")
    with store.writing() as session:
        user = _user(session, name)
        if user.role == "admin" and role != "admin":
            _keep_an_admin(session, user)
        user.role = role


def set_disabled(store, name: str, disabled: bool) -> None:
    """Disable a user (their token and sessions stop working at once; their labels stay) or enable
    them again (with the token they had)."""
    with store.writing() as session:
        user = _user(session, name)
        if disabled and user.disabled_at is None:
            if user.role == "admin":
                _keep_an_admin(session, user)
            user.disabled_at = utcnow()
            _end_sessions(session, user)
        elif not disabled:
            user.disabled_at = None


def _keep_an_admin(session, leaving: User) -> None:
    others = session.scalar(select(func.count(User.id)).where(
        User.role == "admin", User.disabled_at.is_(None), User.id != leaving.id))
    if not others:
        raise LabelingError(f"'{leaving.name}' is the only admin who can sign in", where=leaving.name,
                            fix="make another user admin first")


def authenticate(store, token: str | None) -> Person | None:
    """The user whose token this is, or None (also for a disabled user)."""
    if not token:
        return None
    with store.reading() as session:
        row = session.execute(select(User.name, User.role).where(
            User.token_hash == hash_token(token), User.disabled_at.is_(None))).first()
    return None if row is None else Person(*row)


def list_users(store) -> list[Person]:
    """The users who can sign in, by name."""
    with store.reading() as session:
        return [Person(*row) for row in session.execute(
            select(User.name, User.role).where(User.disabled_at.is_(None)).order_by(User.name))]


def user_table(store) -> list[dict]:
    """Every user, by name: name, role, when added, and whether disabled (for the admin page)."""
    from headstart.labeling.store import iso

    with store.reading() as session:
        rows = session.execute(select(User.name, User.role, User.created_at, User.disabled_at).order_by(User.name))
        return [{"name": name, "role": role, "created_at": iso(created), "disabled": disabled is not None}
                for name, role, created, disabled in rows]
