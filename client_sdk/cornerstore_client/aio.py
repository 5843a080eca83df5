"""``AsyncClient``: :class:`cornerstore_client.client.Client`'s calls, awaited.

The calls and the decisions (what to retry, what an answer means) are the
sync client's own (:mod:`cornerstore_client.calls`, :func:`outcome`,
:func:`next_wait`); only the sending differs.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, TypeVar

import httpx2 as httpx

import cornerstore_client.calls as calls
from cornerstore_client.calls import Call
from cornerstore_client.client import DEFAULT_TIMEOUT, headers, next_wait, outcome
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
from cornerstore_client.retrying import Retries

T = TypeVar("T")


class AsyncClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retries: Retries | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers(api_key),
            timeout=timeout,
            transport=transport,
        )
        self._retries = retries or Retries()
        self._rng = random.SystemRandom()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
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
            await asyncio.sleep(wait)

    async def request_consent(self, shop_id: uuid.UUID | str, request: ConsentRequest) -> Consent:
        return await self.send(calls.consent_request(shop_id, request))

    async def register_webhook(self, url: str) -> Webhook:
        """Send this consumer's events to ``url`` from now on; keep the returned secret.

        Registering again replaces the URL and the secret at once: it is how a
        secret is rotated. Deliveries still pending go to the new URL.
        """
        return await self.send(calls.register_webhook(url))

    async def register_signing_key(
        self, principal_id: uuid.UUID | str, public_key: str
    ) -> SigningKey:
        """Register a connector's Ed25519 public key for the ingest stream (``StreamSigner``)."""
        return await self.send(calls.register_signing_key(principal_id, public_key))

    async def consents(self) -> list[Consent]:
        return await self.send(calls.my_consents())

    async def receipt(
        self, shop_id: uuid.UUID | str, consent_id: uuid.UUID | str, version: int | None = None
    ) -> str:
        return await self.send(calls.receipt(shop_id, consent_id, version))

    async def receipt_keys(self) -> dict[str, Any]:
        return await self.send(calls.receipt_keys())

    async def records(
        self,
        shop_id: uuid.UUID | str,
        category: Category,
        *,
        purpose: str,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            page = await self.send(
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
            for record in page.records:
                yield record
            if page.next is None:
                return
            cursor = page.next

    def sales(self, shop_id: uuid.UUID | str, **window: Any) -> AsyncIterator[dict[str, Any]]:
        return self.records(shop_id, "sales", **window)

    def inventory(self, shop_id: uuid.UUID | str, **window: Any) -> AsyncIterator[dict[str, Any]]:
        return self.records(shop_id, "inventory", **window)

    def payments(self, shop_id: uuid.UUID | str, **window: Any) -> AsyncIterator[dict[str, Any]]:
        return self.records(shop_id, "payments", **window)

    def catalogue(self, shop_id: uuid.UUID | str, **window: Any) -> AsyncIterator[dict[str, Any]]:
        """The shop's products, as far as the purpose may see them (names, not barcodes)."""
        return self.records(shop_id, "catalogue", **window)

    async def analytics(self, query: AnalyticsQuery) -> AnalyticsAnswer:
        return await self.send(calls.analytics(query))

    # --- the audit log (auditors, and shopkeepers for their own shops) -----------------------

    async def checkpoint(self) -> str:
        """The newest signed checkpoint (a signed note); check entries with ``verify_inclusion``."""
        return await self.send(calls.checkpoint())

    async def verifier_keys(self) -> list[str]:
        """The keys that sign checkpoints, current first. Keep one; do not trust it afresh."""
        return await self.send(calls.verifier_keys())

    async def log_entries(
        self, shop_id: uuid.UUID | str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every entry of the log (of one shop's, if named), with its index and bytes."""
        after = -1
        while True:
            page = await self.send(calls.log_entries(shop_id, after))
            for entry in page.records:
                yield entry
            if page.next is None:
                return
            after = int(page.next)

    async def inclusion_proof(self, index: int, tree_size: int) -> dict[str, Any]:
        return await self.send(calls.inclusion_proof(index, tree_size))

    # --- proposals: what the shop gets back ----------------------------------------------------

    async def propose(
        self,
        shop_id: uuid.UUID | str,
        proposal: PurchaseOrder | CreditOffer,
        *,
        idempotency_key: str | None = None,
    ) -> Proposal:
        """Propose an order or a credit line; the shopkeeper answers, a webhook tells you.

        ``idempotency_key``: as :meth:`Client.propose`.
        """
        return await self.send(calls.propose(shop_id, proposal, idempotency_key))

    async def proposal(self, proposal_id: uuid.UUID | str) -> Proposal:
        """One of your proposals, with the shopkeeper's answer once there is one."""
        return await self.send(calls.proposal(proposal_id))
