"""Revocation and pause reach every API worker at once.

Four hub processes serve the same PostgreSQL database, as four API workers
would. A consumer reads through all four, without pause, while the shopkeeper
revokes (or pauses) the consent through one of them. Every read that starts
after the change's answer arrived (so after its commit) must be refused, in
every worker: the issue allows a second, and the hub needs none because no
worker caches consent.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass

import httpx2 as httpx
import pytest

from hub.runtime import Hub
from tests.factories import World, sale
from tests.servers import hub_server

WORKERS = 4


@dataclass(frozen=True)
class _Read:
    worker: int
    started: float
    status: int


@pytest.mark.parametrize("change", ["revoke", "pause"])
def test_a_change_is_enforced_by_every_worker_from_its_commit(
    world: World, hub: Hub, change: str
) -> None:
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("several worker processes on one database: the PostgreSQL deployment")
    shop, consumer = world.shop(), world.consumer()
    world.ingest(shop, "sales", [sale(i) for i in range(3)])
    consent = world.grant(shop, consumer, "replenishment", ["sales"])
    read_path = f"/v1/shops/{shop.id}/sales?purpose=replenishment"

    with ExitStack() as stack:
        # The consumer is refused hundreds of times a second here, on purpose.
        servers = [
            stack.enter_context(hub_server(hub, rate_refusals_per_minute="1000000"))
            for _ in range(WORKERS)
        ]
        bases = [server.base_url for server in servers]
        clients = [
            stack.enter_context(httpx.Client(base_url=b, headers=consumer.headers, timeout=10))
            for b in bases
        ]
        assert [c.get(read_path).status_code for c in clients] == [200] * WORKERS

        reads: list[_Read] = []
        stop = threading.Event()

        def hammer(number: int) -> None:
            while not stop.is_set():
                started = time.monotonic()
                status = clients[number].get(read_path).status_code
                reads.append(_Read(number, started, status))

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(WORKERS)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        with httpx.Client(base_url=bases[0], headers=shop.keeper.headers, timeout=10) as keeper:
            sent = time.monotonic()
            answer = keeper.post(f"/v1/shops/{shop.id}/consents/{consent['id']}/{change}")
        committed = time.monotonic()
        # Until every worker has answered a read begun after the commit (a loaded machine
        # may hold one worker's in-flight read for a while): then the check below means it.
        deadline = committed + 20
        while {r.worker for r in reads if r.started > committed} != set(range(WORKERS)):
            assert time.monotonic() < deadline, "a worker answered no read after the change"
            time.sleep(0.05)
        time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join(timeout=20)

    assert answer.status_code == 200, answer.text
    before = [r for r in reads if r.started < sent]
    after = [r for r in reads if r.started > committed]
    # Control: every worker answered before the change, so "refused after" means something.
    assert {r.worker for r in before if r.status == 200} == set(range(WORKERS))
    assert {r.worker for r in after} == set(range(WORKERS))
    assert [r for r in after if r.status != 404] == []
