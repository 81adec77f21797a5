"""Users of the web page: a name, a role and a sign-in token.

    token = add_user(store, "ana", "annotator")   # shown once; only its sha256 is stored
    user = authenticate(store, token)             # None for an unknown token

Tokens are 256 random bits, so a plain sha256 is enough to store them (a slow password hash
guards guessable secrets; these are not guessable), and a lookup is one indexed query.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
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


def new_token(store, name: str) -> str:
    """Replace a user's token and return the new one. The old token stops working, and so do the
    browser sessions signed in with it (a leaked token or cookie is revoked in one step)."""
    token = secrets.token_urlsafe(32)
    with store.writing() as session:
        user = session.scalars(select(User).where(User.name == name)).first()
        if user is None:
            raise LabelingError(f"no user '{name}'", where="NAME", fix="add them with `headstart label user add`")
        user.token_hash = hash_token(token)
        session.execute(update(SignIn).where(SignIn.user_id == user.id, SignIn.ended_at.is_(None))
                        .values(ended_at=utcnow()))
    return token


def authenticate(store, token: str | None) -> Person | None:
    """The user whose token this is, or None."""
    if not token:
        return None
    with store.reading() as session:
        row = session.execute(select(User.name, User.role).where(User.token_hash == hash_token(token))).first()
    return None if row is None else Person(*row)


def list_users(store) -> list[Person]:
    with store.reading() as session:
        return [Person(*row) for row in session.execute(select(User.name, User.role).order_by(User.name))]
