"""A worker killed mid-ingest loses nothing and stores nothing twice.

A real server with two workers under uvicorn's supervisor (on SQLite as on
PostgreSQL) takes batches of sales from four connectors at once, while its
workers are killed with SIGKILL, one after another. Each connector re-sends a
batch until it is answered, as a connector should. At the end the shop holds
exactly the records that were sent, each once: a batch is one transaction,
and a re-sent record is a duplicate by its event id, whether or not the first
try had committed.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid

import httpx2 as httpx

from hub.runtime import Hub
from tests.factories import World, sale
from tests.servers import Server, hub_server

CONNECTORS = 4
BATCHES = 20  # per connector
RECORDS = 100  # per batch
#: A worker is killed when this many batches have been answered.
KILL_AT = (8, 24, 40, 56)


def _send_until_answered(client: httpx.Client, path: str, records: list[dict[str, object]]) -> int:
    """Send one batch until the hub answers it; return how many tries it took."""
    deadline = time.monotonic() + 60
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        try:
            response = client.post(path, json={"records": records})
        except httpx.TransportError:
            time.sleep(0.05)  # the worker died under the request: send it again
            continue
        if response.status_code >= 500:
            time.sleep(0.05)
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["rejected"] == [], body
        assert body["accepted"] + body["duplicates"] == len(records), body
        return attempt
    raise AssertionError("a batch was never answered")


def _kill_workers(
    server: Server, answered: list[int], done: threading.Event, killed: list[int]
) -> None:
    """Kill a worker each time the answered batches pass a mark, while batches are in flight."""
    for mark in KILL_AT:
        while len(answered) < mark:
            if done.is_set():
                return
            time.sleep(0.005)
        alive = [worker for worker in server.workers() if worker.pid not in killed]
        if alive:
            alive[0].send_signal(signal.SIGKILL)
            killed.append(alive[0].pid)


def _stored_event_ids(world: World, shop_id: str, keeper_headers: dict[str, str]) -> list[str]:
    found: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"since": "2000-01-01T00:00:00Z", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = world.client.get(f"/v1/shops/{shop_id}/sales", params=params, headers=keeper_headers)
        assert page.status_code == 200, page.text
        body = page.json()
        found.extend(record["event_id"] for record in body["records"])
        cursor = body["next"]
        if cursor is None:
            return found


def test_killed_workers_lose_nothing_and_store_nothing_twice(world: World, hub: Hub) -> None:
    shop = world.shop()
    run = uuid.uuid4().hex[:8]
    batches = [
        [
            sale(n, event_id=f"{run}-{connector}-{batch}-{n}")
            for n in range(batch * RECORDS, (batch + 1) * RECORDS)
        ]
        for connector in range(CONNECTORS)
        for batch in range(BATCHES)
    ]
    path = f"/v1/shops/{shop.id}/sales"
    tries: list[int] = []
    killed: list[int] = []

    with hub_server(hub, workers=2) as server:
        done = threading.Event()

        def connector(number: int) -> None:
            with httpx.Client(
                base_url=server.base_url, headers=shop.connector.headers, timeout=30
            ) as client:
                for batch in batches[number::CONNECTORS]:
                    tries.append(_send_until_answered(client, path, batch))

        killer = threading.Thread(target=_kill_workers, args=(server, tries, done, killed))
        senders = [threading.Thread(target=connector, args=(n,)) for n in range(CONNECTORS)]
        killer.start()
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=300)
        done.set()
        killer.join(timeout=30)

    # Control: workers did die under the load, and some batches had to be sent again.
    assert len(killed) == len(KILL_AT), killed
    assert len(tries) == len(batches)
    assert max(tries) > 1, tries

    sent = sorted(record["event_id"] for batch in batches for record in batch)
    stored = _stored_event_ids(world, shop.id, shop.keeper.headers)
    assert len(stored) == len(set(stored)), "a record was stored twice"
    assert sorted(stored) == sent
