"""Each call the client makes, described once for both the sync and the async client.

A :class:`Call` says what to send and how to read the answer; the clients
only send it (with retries) and hand the decoded body to ``parse``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from cornerstore_client.models import (
    AnalyticsAnswer,
    AnalyticsQuery,
    Category,
    Consent,
    ConsentRequest,
    CreditOffer,
    Proposal,
    PurchaseOrder,
    SigningKey,
    Webhook,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    #: Read the answer as text (a JWS), not JSON.
    text: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def resendable(self) -> bool:
        """Sending it twice does what sending it once does: a read, or a write with a key."""
        return self.method == "GET" or "Idempotency-Key" in self.headers


@dataclass(frozen=True)
class Page:
    """One page of a governed read: records cut down to what the purpose may see."""

    records: list[dict[str, Any]]
    next: str | None


def _page(body: Any) -> Page:
    return Page(list(body["records"]), body.get("next"))


def _time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times sent to the hub need a time zone (the hub refuses local times)")
    return moment.isoformat()


def consent_request(shop_id: uuid.UUID | str, request: ConsentRequest) -> Call[Consent]:
    return Call(
        "POST",
        f"/v1/shops/{shop_id}/consent-requests",
        Consent.model_validate,
        body=request.model_dump(mode="json", by_alias=True, exclude_none=True),
    )


def register_webhook(url: str) -> Call[Webhook]:
    return Call("PUT", "/v1/consumers/me/webhook", Webhook.model_validate, body={"url": url})


def register_signing_key(principal_id: uuid.UUID | str, public_key: str) -> Call[SigningKey]:
    return Call(
        "POST",
        f"/v1/principals/{principal_id}/signing-keys",
        SigningKey.model_validate,
        body={"public_key": public_key},
    )


def my_consents() -> Call[list[Consent]]:
    return Call(
        "GET",
        "/v1/consumers/me/consents",
        lambda body: [Consent.model_validate(c) for c in body["consents"]],
    )


def records_page(
    shop_id: uuid.UUID | str,
    category: Category,
    *,
    purpose: str,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int | None,
) -> Call[Page]:
    params = {"purpose": purpose}
    if since is not None:
        params["since"] = _time(since)
    if until is not None:
        params["until"] = _time(until)
    if cursor is not None:
        params["cursor"] = cursor
    if limit is not None:
        params["limit"] = str(limit)
    return Call("GET", f"/v1/shops/{shop_id}/{category}", _page, params=params)


def analytics(query: AnalyticsQuery) -> Call[AnalyticsAnswer]:
    return Call(
        "POST",
        "/v1/analytics/queries",
        AnalyticsAnswer.model_validate,
        body=query.model_dump(mode="json", exclude_none=True),
    )


def receipt(
    shop_id: uuid.UUID | str, consent_id: uuid.UUID | str, version: int | None = None
) -> Call[str]:
    params = {} if version is None else {"version": str(version)}
    return Call(
        "GET",
        f"/v1/shops/{shop_id}/consents/{consent_id}/receipt",
        str,
        params=params,
        text=True,
    )


def receipt_keys() -> Call[dict[str, Any]]:
    return Call("GET", "/v1/keys/receipts", dict)


def checkpoint() -> Call[str]:
    return Call("GET", "/v1/audit/checkpoint", str, text=True)


def verifier_keys() -> Call[list[str]]:
    return Call(
        "GET", "/v1/audit/public-key", lambda text: [k for k in text.splitlines() if k], text=True
    )


def log_entries(shop_id: uuid.UUID | str | None, after: int) -> Call[Page]:
    params = {"after": str(after)}
    if shop_id is not None:
        params["shop_id"] = str(shop_id)
    return Call(
        "GET", "/v1/audit/entries", lambda body: Page(body["entries"], body["next"]), params=params
    )


def inclusion_proof(index: int, tree_size: int) -> Call[dict[str, Any]]:
    params = {"index": str(index), "tree_size": str(tree_size)}
    return Call("GET", "/v1/audit/proofs/inclusion", dict, params=params)


def propose(
    shop_id: uuid.UUID | str, proposal: PurchaseOrder | CreditOffer, idempotency_key: str | None
) -> Call[Proposal]:
    return Call(
        "POST",
        f"/v1/shops/{shop_id}/proposals",
        Proposal.model_validate,
        body=proposal.model_dump(mode="json", exclude_none=True),
        headers={} if idempotency_key is None else {"Idempotency-Key": idempotency_key},
    )


def proposal(proposal_id: uuid.UUID | str) -> Call[Proposal]:
    return Call("GET", f"/v1/consumers/me/proposals/{proposal_id}", Proposal.model_validate)
