"""One exception type per stable error code the hub answers with.

The hub answers every error as ``{"error": code, "detail": …, "fields": [...]}``.
:func:`error_for` turns such an answer into the exception of its code, so a
caller catches what it can act on (``except PrivacyBudgetExhausted``) rather
than comparing strings. A code this client does not know yet raises the class
of its HTTP status family, never nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldProblem:
    """A field the hub refused, by its dotted path (``body.records.3.sku``), and why."""

    field: str
    reason: str


class CornerstoreError(Exception):
    """Anything the hub refused or could not do. ``code`` is the hub's stable error code."""

    code: ClassVar[str] = "error"

    def __init__(
        self,
        detail: str,
        *,
        status: int,
        fields: tuple[FieldProblem, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        self.detail = detail
        self.status = status
        self.fields = fields
        self.retry_after = retry_after
        named = "; ".join(f"{f.field}: {f.reason}" for f in fields)
        super().__init__(f"{status} {self.code}: {detail}" + (f" ({named})" if named else ""))


class ClientError(CornerstoreError):
    """A 4xx: the request must change before it can succeed."""

    code = "client_error"


class ServerError(CornerstoreError):
    """A 5xx the retries did not get past."""

    code = "server_error"


class BadRequest(ClientError):
    code = "bad_request"


class Unauthenticated(ClientError):
    code = "unauthenticated"


class Forbidden(ClientError):
    code = "forbidden"


class PrivacyBudgetExhausted(Forbidden):
    """The query would spend more ε than is left; nothing was spent."""

    code = "privacy_budget_exhausted"


class NotFound(ClientError):
    """Not there, or not for you: the hub answers both alike (a refused read is a 404)."""

    code = "not_found"


class Conflict(ClientError):
    code = "conflict"


class PayloadTooLarge(ClientError):
    code = "payload_too_large"


class ValidationFailed(ClientError):
    """The body or query did not validate; ``fields`` names each problem."""

    code = "validation_failed"


class TooManyRequests(ClientError):
    """Still limited after the retries; ``retry_after`` says how long the hub asked to wait."""

    code = "too_many_requests"


class Unavailable(ServerError):
    code = "unavailable"


class InternalError(ServerError):
    code = "internal_error"


class VerificationError(Exception):
    """A receipt, webhook or proof that must not be trusted. The verifiers never return False."""


_BY_CODE: dict[str, type[CornerstoreError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthenticated,
        Forbidden,
        PrivacyBudgetExhausted,
        NotFound,
        Conflict,
        PayloadTooLarge,
        ValidationFailed,
        TooManyRequests,
        Unavailable,
        InternalError,
    )
}


def error_for(status: int, body: Any, retry_after: float | None = None) -> CornerstoreError:
    """The exception for an error answer: by its code, else by its status family."""
    code, detail = "", f"HTTP {status}"
    fields: tuple[FieldProblem, ...] = ()
    if isinstance(body, dict):
        code = str(body.get("error", ""))
        detail = str(body.get("detail", detail))
        fields = tuple(
            FieldProblem(str(f.get("field", "")), str(f.get("reason", "")))
            for f in body.get("fields") or ()
            if isinstance(f, dict)
        )
    cls = _BY_CODE.get(code) or (ServerError if status >= 500 else ClientError)
    return cls(detail, status=status, fields=fields, retry_after=retry_after)
