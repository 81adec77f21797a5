"""Signed-in browsers: the cookie holds a random session id, the database only its sha256.

    signed_in = start(store, token)        # None for an unknown token; signed_in.session_id is the cookie
    found = look_up(store, session_id)     # None once ended (logout), expired or unknown
    end(store, session_id)                 # logout: the cookie stops working on the server at once

The cookie never holds the user's long-lived sign-in token, so a copied cookie dies with its session:
at logout, after :data:`SESSION_SECONDS`, or when the user's token is rotated
(``headstart label user token``, which ends all their sessions). Each session has a CSRF token of its
own, so one from an ended session or another browser is refused.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select, update

from headstart.labeling.models import Session as SignIn
from headstart.labeling.models import User, utcnow
from headstart.labeling.users import Person, hash_token

SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class SignedIn:
    """A live session: who, and the CSRF token their forms and the page's script must send.
    ``session_id`` (the cookie's value) is only known to :func:`start`; a lookup has it as ``""``."""

    person: Person
    csrf: str
    session_id: str = ""


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def start(store, token: str | None, *, seconds: int = SESSION_SECONDS) -> SignedIn | None:
    """Sign in with a user's token: a new session, or None when the token is unknown."""
    if not token:
        return None
    session_id, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), utcnow()
    with store.writing() as session:
        user = session.execute(select(User.id, User.name, User.role).where(
            User.token_hash == hash_token(token), User.disabled_at.is_(None))).first()
        if user is None:
            return None
        session.execute(delete(SignIn).where(SignIn.expires_at < now))  # the table keeps only live sessions
        session.add(SignIn(id_hash=_hash(session_id), user_id=user.id, csrf=csrf, created_at=now,
                           expires_at=now + timedelta(seconds=seconds)))
    return SignedIn(Person(user.name, user.role), csrf, session_id)


def look_up(store, session_id: str | None) -> SignedIn | None:
    """The live session with this id (from the cookie), or None: unknown, ended or expired."""
    if not session_id:
        return None
    with store.reading() as session:
        row = session.execute(select(User.name, User.role, SignIn.csrf, SignIn.expires_at, SignIn.ended_at)
                              .join(User, User.id == SignIn.user_id)
                              .where(SignIn.id_hash == _hash(session_id), User.disabled_at.is_(None))).first()
    if row is None or row.ended_at is not None or _utc(row.expires_at) <= utcnow():
        return None
    return SignedIn(Person(row.name, row.role), row.csrf)


def end(store, session_id: str | None) -> None:
    """End a session (logout); its cookie and CSRF token stop working. An unknown id is a no-op."""
    if not session_id:
        return
    with store.writing() as session:
        session.execute(update(SignIn).where(SignIn.id_hash == _hash(session_id), SignIn.ended_at.is_(None))
                        .values(ended_at=utcnow()))


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes, which are UTC here."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
