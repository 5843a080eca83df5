"""One error base class and the one JSON shape every error is rendered in.

Each error carries its HTTP status and a stable machine-readable code. The
handlers in :mod:`cornerstore.error_handlers` render them; the OpenAPI error
responses are generated from the classes by :func:`error_responses`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. body.records.3.sku")
    reason: str


class ErrorBody(BaseModel):
    error: str = Field(description="Stable machine-readable error code")
    detail: str = Field(description="Human-readable explanation")
    fields: list[FieldError] = Field(default_factory=list)


class CornerstoreError(Exception):
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_detail: ClassVar[str] = "internal error"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str | None = None, fields: list[FieldError] | None = None) -> None:
        self.detail = detail or self.default_detail
        self.fields = fields or []
        super().__init__(self.detail)

    def body(self) -> ErrorBody:
        return ErrorBody(error=self.code, detail=self.detail, fields=self.fields)

    def response_headers(self) -> dict[str, str]:
        return self.headers


class BadRequest(CornerstoreError):
    status_code = 400
    code = "bad_request"
    default_detail = "the request is malformed"


class Unauthenticated(CornerstoreError):
    status_code = 401
    code = "unauthenticated"
    default_detail = "a valid API key is required: Authorization: Bearer <key>"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class TooManyRequests(CornerstoreError):
    status_code = 429
    code = "too_many_requests"
    default_detail = "too many requests: retry after the seconds in Retry-After"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Forbidden(CornerstoreError):
    status_code = 403
    code = "forbidden"
    default_detail = "this principal may not do that"


class NotFound(CornerstoreError):
    """Also the answer to any refused read, so an outsider learns nothing."""

    status_code = 404
    code = "not_found"
    default_detail = "no such resource"


class Conflict(CornerstoreError):
    status_code = 409
    code = "conflict"
    default_detail = "the resource is not in a state that allows this"


class PayloadTooLarge(CornerstoreError):
    status_code = 413
    code = "payload_too_large"
    default_detail = "too many records in one batch"


class ValidationFailed(CornerstoreError):
    status_code = 422
    code = "validation_failed"
    default_detail = "the request did not validate"


class ServiceUnavailable(CornerstoreError):
    """Raised when the gate cannot write its audit record: the data stays in."""

    status_code = 503
    code = "unavailable"
    default_detail = "the service cannot answer safely right now; retry later"


def error_responses(*errors: type[CornerstoreError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the errors a route can answer, all in the one shape."""
    return {
        cls.status_code: {"model": ErrorBody, "description": f"`{cls.code}`: {cls.default_detail}"}
        for cls in errors
    }


#: Routes about one shop: any refusal is a 404, never a 403.
SHOP_ERRORS = error_responses(Unauthenticated, NotFound, ValidationFailed, ServiceUnavailable)
#: Routes about no shop (administration, the whole audit log): a refusal is a 403.
GLOBAL_ERRORS = error_responses(Unauthenticated, Forbidden, ValidationFailed, ServiceUnavailable)
