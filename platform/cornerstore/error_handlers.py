"""Render every error in the one JSON shape of :class:`cornerstore.errors.ErrorBody`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from cornerstore.crypto import KeyMaterialError
from cornerstore.errors import (
    Conflict,
    CornerstoreError,
    ErrorBody,
    FieldError,
    ServiceUnavailable,
    ValidationFailed,
)
from cornerstore.keys.ring import UnknownShopKey
from cornerstore.ports import AuditUnavailable

_log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


#: Renders an error as a web page, for the requests it claims; None for the rest.
ErrorPage = Callable[[Request, int, ErrorBody], Response | None]


def _render(
    request: Request, status: int, body: ErrorBody, headers: Mapping[str, str] | None = None
) -> Response:
    page: ErrorPage | None = getattr(request.app.state, "error_page", None)
    rendered = page(request, status, body) if page is not None else None
    if rendered is not None:
        return rendered
    return JSONResponse(status_code=status, content=body.model_dump(mode="json"), headers=headers)


async def _cornerstore_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CornerstoreError)
    return _render(request, exc.status_code, exc.body(), exc.response_headers())


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        if error.get("type") == "json_invalid":
            # The position is in the loc; the body itself is never echoed back.
            loc = loc[:1]
        fields.append(FieldError(field=".".join(loc), reason=str(error.get("msg", "invalid"))))
    return _render(
        request,
        ValidationFailed.status_code,
        ValidationFailed("the request did not validate", fields).body(),
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    # Keep the exception's headers: a 405 must say which methods are Allowed.
    return _render(
        request, exc.status_code, ErrorBody(error=code, detail=str(exc.detail)), exc.headers
    )


async def _integrity_error(request: Request, _exc: Exception) -> Response:
    return _render(
        request, Conflict.status_code, Conflict("the change conflicts with stored data").body()
    )


async def _database_error(request: Request, exc: Exception) -> Response:
    # The exception text can hold statement parameters, which can be shop data.
    _log.error("database error: %s", type(exc).__name__)
    return _render(request, ServiceUnavailable.status_code, ServiceUnavailable().body())


async def _key_error(request: Request, exc: Exception) -> Response:
    # A data key that will not unwrap: fail closed, say nothing about the key.
    _log.error("key material error: %s", type(exc).__name__)
    return _render(request, ServiceUnavailable.status_code, ServiceUnavailable().body())


async def _audit_unavailable(request: Request, exc: Exception) -> Response:
    # No durable audit entry, no answer: the request fails closed.
    _log.error("audit unavailable: %s", exc)
    return _render(request, ServiceUnavailable.status_code, ServiceUnavailable().body())


def install(app: FastAPI, *, error_page: ErrorPage | None = None) -> None:
    """Handlers for the errors the app expects; ``error_page`` renders them for pages.

    Any other exception is answered by :class:`cornerstore.middleware.CatchAll`:
    Starlette re-raises after an ``Exception`` handler here, on to the server's
    log and the request span.
    """
    app.state.error_page = error_page
    app.add_exception_handler(CornerstoreError, _cornerstore_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(KeyMaterialError, _key_error)
    app.add_exception_handler(UnknownShopKey, _key_error)
    app.add_exception_handler(AuditUnavailable, _audit_unavailable)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DBAPIError, _database_error)
    # The pool had no connection to give in time; not a DBAPIError, same answer.
    app.add_exception_handler(PoolTimeout, _database_error)
