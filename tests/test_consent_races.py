"""Consent changes racing each other end in an answer, never in a deadlock's 503.

A grant replaces the same consumer's live consent for the purpose, so it locks
that consent; a revocation locks the consent it revokes; both write to the
audit log. Several shopkeeper sessions grant and revoke one consumer's consent
at once through a real server with two workers, while a consumer reads under
it. Every answer must be one the API promises: the change (200/201), a 409 for
a consent another change replaced first, or for the read, 404 when no consent
is live at that moment. When the grants stop, one consent is live: racing
grants take turns, and each replaces the one before it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx2 as httpx

from hub.runtime import Hub
from tests.factories import World, rfc3339, sale
from tests.servers import hub_server

SESSIONS = 6
SECONDS = 4.0


def test_racing_grants_revocations_and_reads_never_fail(world: World, hub: Hub) -> None:
    shop, consumer = world.shop(), world.consumer()
    world.ingest(shop, "sales", [sale(n) for n in range(5)])
    world.grant(shop, consumer, "replenishment", ["sales"])
    consents = f"/v1/shops/{shop.id}/consents"
    terms = {
        "consumer_id": consumer.id,
        "purpose": "replenishment",
        "categories": ["sales"],
        "expires_at": rfc3339(datetime.now(UTC) + timedelta(days=1)),
    }
    answers: Counter[tuple[str, int]] = Counter()

    with hub_server(hub, workers=2, rate_refusals_per_minute="1000000") as server:
        stop = time.monotonic() + SECONDS

        def keeper() -> None:
            with httpx.Client(
                base_url=server.base_url, headers=shop.keeper.headers, timeout=30
            ) as client:
                while time.monotonic() < stop:
                    granted = client.post(consents, json=terms)
                    answers["grant", granted.status_code] += 1
                    if granted.status_code == 201:
                        revoked = client.post(f"{consents}/{granted.json()['id']}/revoke")
                        answers["revoke", revoked.status_code] += 1
                # The last grant of each session stays: only one may stay live.
                answers["grant", client.post(consents, json=terms).status_code] += 1

        def reader() -> None:
            with httpx.Client(
                base_url=server.base_url, headers=consumer.headers, timeout=30
            ) as client:
                while time.monotonic() < stop:
                    read = client.get(f"/v1/shops/{shop.id}/sales?purpose=replenishment")
                    answers["read", read.status_code] += 1

        threads = [threading.Thread(target=keeper) for _ in range(SESSIONS)]
        threads.append(threading.Thread(target=reader))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    unexpected = {
        answer: n
        for answer, n in answers.items()
        if answer
        not in {("grant", 201), ("revoke", 200), ("revoke", 409), ("read", 200), ("read", 404)}
    }
    assert unexpected == {}, answers
    live = shop.keeper.get(f"/v1/shops/{shop.id}/consents", status="active").json()["consents"]
    assert len([c for c in live if c["consumer_id"] == consumer.id]) == 1, live
    # Control: the race was run, and it did make changes collide.
    assert answers["grant", 201] >= SESSIONS * 5, answers
    assert answers["revoke", 409] > 0, answers
