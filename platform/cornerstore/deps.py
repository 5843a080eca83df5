"""FastAPI dependencies shared by every router: the hub, the request's session, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from cornerstore.hub import Hub
from cornerstore.principals.auth import Caller, caller_from_api_key


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


def get_session(hub: HubDep) -> Iterator[Session]:
    """One transaction per request, committed after the endpoint returns and
    before the response is sent (``scope="function"``), rolled back on error.

    Services only flush. If the commit fails the client gets an error, never
    a success for work that was not stored.
    """
    session = hub.sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_session, scope="function")]


_bearer = HTTPBearer(
    auto_error=False, scheme_name="api_key", description="Authorization: Bearer <api key>"
)


def get_caller(
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    return caller_from_api_key(session, credentials.credentials if credentials else None)


CurrentCaller = Annotated[Caller, Depends(get_caller)]
