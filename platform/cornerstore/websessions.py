"""The web console's way in: one-time sign-in links, and the sessions they start.

A link is minted for a shopkeeper or an auditor (never a connector or a
consumer: the console is for people) and opened once, within minutes. Opening
it starts a session kept on the server, so that signing out, or disabling the
principal, ends it at once in every worker. Only SHA-256 digests of the link
and session tokens are stored: each has 256 bits of entropy, so a fast hash is
enough, and a copy of the database lets no one in.

A session authenticates the same requests an API key does, through
:func:`cornerstore.deps.get_caller`; a request that changes something must
also carry the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from cornerstore.errors import Conflict, Forbidden, Unauthenticated
from cornerstore.identity import Caller, caller_of
from cornerstore.models.principals import Principal, Role, SignInLink, WebSession

#: The roles the web console serves.
CONSOLE_ROLES = frozenset({Role.shopkeeper, Role.auditor})
#: The session cookie's name; its value is the session token.
COOKIE = "cs_session"
#: The header that carries the CSRF token on requests that change something.
CSRF_HEADER = "X-CSRF-Token"
#: A session's last use is written at most this often, not on every request.
_SEEN_EVERY = timedelta(minutes=1)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class MintedLink:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class StartedSession:
    token: str
    csrf_token: str
    principal_id: uuid.UUID
    role: str
    expires_at: datetime


def mint_link(
    session: Session, principal: Principal, *, valid_for: timedelta, now: datetime
) -> MintedLink:
    if principal.role not in CONSOLE_ROLES:
        raise Conflict("only shopkeepers and auditors sign in to the web console")
    if principal.disabled_at is not None:
        raise Conflict("the principal is disabled")
    token = secrets.token_urlsafe(32)
    expires_at = now + valid_for
    session.add(
        SignInLink(
            token_hash=_digest(token),
            principal_id=principal.id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()
    return MintedLink(token, expires_at)


def redeem(session: Session, token: str, *, absolute: timedelta, now: datetime) -> StartedSession:
    """Spend a link (once, whoever races for it) and start a session for its principal."""
    spent = session.execute(
        update(SignInLink)
        .where(
            SignInLink.token_hash == _digest(token),
            SignInLink.used_at.is_(None),
            SignInLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(SignInLink.principal_id)
    ).first()
    if spent is None:
        raise Unauthenticated("this sign-in link is used, expired or unknown: ask for a new one")
    principal = session.get(Principal, spent.principal_id)
    if (
        principal is None
        or principal.disabled_at is not None
        or principal.role not in CONSOLE_ROLES
    ):
        raise Unauthenticated("this sign-in link is used, expired or unknown: ask for a new one")
    started = StartedSession(
        token=secrets.token_urlsafe(32),
        csrf_token=secrets.token_urlsafe(32),
        principal_id=principal.id,
        role=principal.role,
        expires_at=now + absolute,
    )
    session.add(
        WebSession(
            token_hash=_digest(started.token),
            principal_id=principal.id,
            csrf_token=started.csrf_token,
            created_at=now,
            last_seen_at=now,
            expires_at=started.expires_at,
        )
    )
    session.flush()
    return started


@dataclass(frozen=True)
class SessionCaller:
    caller: Caller
    csrf_token: str


def caller_from_session(
    session: Session, token: str, *, idle: timedelta, now: datetime
) -> SessionCaller:
    """The caller a session cookie stands for, or 401 if the session is over."""
    row = session.execute(
        select(WebSession, Principal)
        .join(Principal, Principal.id == WebSession.principal_id)
        .where(WebSession.token_hash == _digest(token))
    ).first()
    if row is None:
        raise Unauthenticated("the session is over: sign in again")
    web, principal = row
    if (
        web.ended_at is not None
        or web.expires_at <= now
        or web.last_seen_at + idle <= now
        or principal.disabled_at is not None
    ):
        raise Unauthenticated("the session is over: sign in again")
    if now - web.last_seen_at >= _SEEN_EVERY:
        web.last_seen_at = now
    return SessionCaller(caller_of(session, principal), web.csrf_token)


def check_csrf(expected: str, sent: str | None) -> None:
    if sent is None or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Forbidden("the page is out of date: reload it and try again")


def end(session: Session, token: str, now: datetime) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.token_hash == _digest(token), WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def end_all(session: Session, principal_id: uuid.UUID, now: datetime) -> int:
    """End every session of a principal (it was disabled); return how many were live."""
    result = session.execute(
        update(WebSession)
        .where(WebSession.principal_id == principal_id, WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(cast(CursorResult[Any], result).rowcount)
