"""``Client``: the hub's API for a consumer, over one keep-alive connection pool.

    with Client("https://hub.example", api_key) as client:
        for sale in client.sales(shop_id, purpose="replenishment", since=monday):
            ...

Every call raises the exception of the hub's error code
(:mod:`cornerstore_client.errors`) and retries what the hub said to retry
(:mod:`cornerstore_client.retrying`). :class:`AsyncClient` in
:mod:`cornerstore_client.aio` has the same methods, awaited.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypeVar

import httpx2 as httpx

import cornerstore_client.calls as calls
from cornerstore_client.calls import Call
from cornerstore_client.errors import error_for
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
from cornerstore_client.retrying import RETRIED_STATUSES, Retries, retry_after

T = TypeVar("T")

#: Seconds to connect, and to wait for each read of an answer.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
USER_AGENT = "cornerstore-client/0.1"


def headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT}


def outcome(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer, or the error of its code."""
    if response.is_success:
        return call.parse(response.text if call.text else response.json())
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    raise error_for(response.status_code, body, retry_after(response.headers.get("Retry-After")))


def next_wait(
    retries: Retries,
    attempt: int,
    response: httpx.Response | None,
    resendable: bool,
    rng: random.Random,
) -> float | None:
    """Seconds to wait before trying again, or None to stop at this answer (or failure).

    A "not now" answer is retried; a lost connection (``response`` None) only
    where sending twice is harmless (``resendable``: a read, or a write with
    an ``Idempotency-Key``).
    """
    if attempt >= retries.attempts:
        return None
    if response is None:
        return retries.wait(attempt + 1, None, rng) if resendable else None
    if response.status_code not in RETRIED_STATUSES:
        return None
    asked = retry_after(response.headers.get("Retry-After"))
    if asked is not None and asked > retries.max_backoff:
        return None  # longer than this client waits: the caller decides, with retry_after
    return retries.wait(attempt + 1, asked, rng)


class Client:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retries: Retries | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers(api_key),
            timeout=timeout,
            transport=transport,
        )
        self._retries = retries or Retries()
        self._rng = random.SystemRandom()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: Call[T]) -> T:
        """Send ``call``, retrying as :mod:`cornerstore_client.retrying` says."""
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, call.path, params=call.params, json=call.body, headers=call.headers
                )
            except httpx.TransportError:
                wait = next_wait(self._retries, attempt, None, call.resendable, self._rng)
                if wait is None:
                    raise
            else:
                wait = next_wait(self._retries, attempt, response, call.resendable, self._rng)
                if wait is None:
                    return outcome(call, response)
            attempt += 1
            time.sleep(wait)

    # --- consents ---------------------------------------------------------------------------

    def request_consent(self, shop_id: uuid.UUID | str, request: ConsentRequest) -> Consent:
        """Ask a shop for consent; it stays ``requested`` until the shopkeeper answers."""
        return self.send(calls.consent_request(shop_id, request))

    def register_webhook(self, url: str) -> Webhook:
        """Send this consumer's events to ``url`` from now on; keep the returned secret.

        Registering again replaces the URL and the secret at once: it is how a
        secret is rotated. Deliveries still pending go to the new URL.
        """
        return self.send(calls.register_webhook(url))

    def register_signing_key(self, principal_id: uuid.UUID | str, public_key: str) -> SigningKey:
        """Register a connector's Ed25519 public key for the ingest stream (``StreamSigner``)."""
        return self.send(calls.register_signing_key(principal_id, public_key))

    def consents(self) -> list[Consent]:
        """Every consent shops have given (or been asked for) this consumer, newest state."""
        return self.send(calls.my_consents())

    def receipt(
        self, shop_id: uuid.UUID | str, consent_id: uuid.UUID | str, version: int | None = None
    ) -> str:
        """A consent version's signed receipt (JWS); check it with ``verify_receipt``."""
        return self.send(calls.receipt(shop_id, consent_id, version))

    def receipt_keys(self) -> dict[str, Any]:
        """The hub's published receipt keys (a JWK Set)."""
        return self.send(calls.receipt_keys())

    # --- governed reads ---------------------------------------------------------------------

    def records(
        self,
        shop_id: uuid.UUID | str,
        category: Category,
        *,
        purpose: str,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every record of the window, page after page, in event-time order."""
        cursor: str | None = None
        while True:
            page = self.send(
                calls.records_page(
                    shop_id,
                    category,
                    purpose=purpose,
                    since=since,
                    until=until,
                    cursor=cursor,
                    limit=page_size,
                )
            )
            yield from page.records
            if page.next is None:
                return
            cursor = page.next

    def sales(self, shop_id: uuid.UUID | str, **window: Any) -> Iterator[dict[str, Any]]:
        return self.records(shop_id, "sales", **window)

    def inventory(self, shop_id: uuid.UUID | str, **window: Any) -> Iterator[dict[str, Any]]:
        return self.records(shop_id, "inventory", **window)

    def payments(self, shop_id: uuid.UUID | str, **window: Any) -> Iterator[dict[str, Any]]:
        return self.records(shop_id, "payments", **window)

    def catalogue(self, shop_id: uuid.UUID | str, **window: Any) -> Iterator[dict[str, Any]]:
        """The shop's products, as far as the purpose may see them (names, not barcodes)."""
        return self.records(shop_id, "catalogue", **window)

    # --- analytics --------------------------------------------------------------------------

    def analytics(self, query: AnalyticsQuery) -> AnalyticsAnswer:
        """A question across shops; raises ``PrivacyBudgetExhausted`` when ε has run out."""
        return self.send(calls.analytics(query))

    # --- the audit log (auditors, and shopkeepers for their own shops) -----------------------

    def checkpoint(self) -> str:
        """The newest signed checkpoint (a signed note); check entries with ``verify_inclusion``."""
        return self.send(calls.checkpoint())

    def verifier_keys(self) -> list[str]:
        """The keys that sign checkpoints, current first. Keep one; do not trust it afresh."""
        return self.send(calls.verifier_keys())

    def log_entries(self, shop_id: uuid.UUID | str | None = None) -> Iterator[dict[str, Any]]:
        """Every entry of the log (of one shop's, if named), with its index and bytes."""
        after = -1
        while True:
            page = self.send(calls.log_entries(shop_id, after))
            yield from page.records
            if page.next is None:
                return
            after = int(page.next)

    def inclusion_proof(self, index: int, tree_size: int) -> dict[str, Any]:
        return self.send(calls.inclusion_proof(index, tree_size))

    # --- proposals: what the shop gets back ----------------------------------------------------

    def propose(
        self,
        shop_id: uuid.UUID | str,
        proposal: PurchaseOrder | CreditOffer,
        *,
        idempotency_key: str | None = None,
    ) -> Proposal:
        """Propose an order or a credit line; the shopkeeper answers, a webhook tells you.

        With ``idempotency_key`` (your name for this proposal, such as the id of
        the event it answers), sending it again returns the proposal already
        made, so a lost answer is retried without asking the shopkeeper twice.
        """
        return self.send(calls.propose(shop_id, proposal, idempotency_key))

    def proposal(self, proposal_id: uuid.UUID | str) -> Proposal:
        """One of your proposals, with the shopkeeper's answer once there is one."""
        return self.send(calls.proposal(proposal_id))
