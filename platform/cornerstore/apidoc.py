"""The errors every operation can give for what it is, not for what it does.

A route declares the errors of its own logic (:func:`cornerstore.errors.error_responses`).
Some answers come from the layers around every route instead: a body that is
not JSON in UTF-8 (400) or is over the size cap (413), and the rate limit on
failed authentications and refusals (429). Declaring those here, from the
shape of each operation, keeps the document true for every route, including
the ones added later, without each router repeating them.
"""

from __future__ import annotations

from typing import Any

from cornerstore.errors import BadRequest, CornerstoreError, PayloadTooLarge, TooManyRequests

ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorBody"}
_METHODS = ("get", "put", "post", "delete", "patch")


def _response(error: type[CornerstoreError], description: str) -> dict[str, Any]:
    return {
        "description": f"`{error.code}`: {description}",
        "content": {"application/json": {"schema": ERROR_SCHEMA}},
    }


_UNREADABLE_BODY = _response(BadRequest, "the body cannot be parsed, e.g. it is not UTF-8")
_BODY_TOO_LARGE = _response(PayloadTooLarge, "the body is over the hub's size cap")
_TOO_MANY = _response(
    TooManyRequests,
    "too many failed authentications from this address, refusals of this principal, "
    "or consent requests to this shop; retry after the seconds in Retry-After",
) | {"headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}}


def declare_shared_errors(document: dict[str, Any]) -> None:
    """Add the shared errors to each operation, and answer every error in JSON.

    FastAPI documents a route's extra responses in the route's own media type,
    so an error of a plain-text or CSV route would be documented as text; the
    hub renders every error as JSON, and the document now says so.
    """
    for item in document.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("400", _UNREADABLE_BODY)
                responses.setdefault("413", _BODY_TOO_LARGE)
            if operation.get("security"):
                responses.setdefault("429", _TOO_MANY)
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = {"application/json": {"schema": ERROR_SCHEMA}}
