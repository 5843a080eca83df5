"""Render every error in the one JSON shape of :class:`cornerstore.errors.ErrorBody`."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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


def _render(status: int, body: ErrorBody, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body.model_dump(mode="json"), headers=headers)


async def _cornerstore_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CornerstoreError)
    return _render(exc.status_code, exc.body(), exc.response_headers())


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        if error.get("type") == "json_invalid":
            # The position is in the loc; the body itself is never echoed back.
            loc = loc[:1]
        fields.append(FieldError(field=".".join(loc), reason=str(error.get("msg", "invalid"))))
    return _render(
        ValidationFailed.status_code,
        ValidationFailed("the request did not validate", fields).body(),
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    # Keep the exception's headers: a 405 must say which methods are Allowed.
    return _render(exc.status_code, ErrorBody(error=code, detail=str(exc.detail)), exc.headers)


async def _integrity_error(_request: Request, _exc: Exception) -> JSONResponse:
    return _render(Conflict.status_code, Conflict("the change conflicts with stored data").body())


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    # The exception text can hold statement parameters, which can be shop data.
    _log.error("database error: %s", type(exc).__name__)
    return _render(ServiceUnavailable.status_code, ServiceUnavailable().body())


async def _key_error(_request: Request, exc: Exception) -> JSONResponse:
    # A data key that will not unwrap: fail closed, say nothing about the key.
    _log.error("key material error: %s", type(exc).__name__)
    return _render(ServiceUnavailable.status_code, ServiceUnavailable().body())


async def _audit_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    # No durable audit entry, no answer: the request fails closed.
    _log.error("audit unavailable: %s", exc)
    return _render(ServiceUnavailable.status_code, ServiceUnavailable().body())


def install(app: FastAPI) -> None:
    """Handlers for the errors the app expects.

    Any other exception is answered by :class:`cornerstore.middleware.CatchAll`:
    Starlette re-raises after an ``Exception`` handler here, on to the server's
    log and the request span.
    """
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
