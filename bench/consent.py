"""Consent: how fast a change reaches every worker, writes at a million shops, read-path cost.

``propagation``: four hub processes (API workers) on one PostgreSQL database.
Each round grants a consent, a reader per worker reads in a loop, and the
shopkeeper revokes through one worker. For every worker the figure is the
time from the revocation's answer (its commit is before it) to the first
refused answer from that worker; the baseline is one allowed read's round
trip on the same workers. Every read that started after the answer must be
refused; the bench fails otherwise.

``consent_writes``: grant-then-revoke pairs through the consent service (each
a new version with its signed receipt, an audit entry and a webhook check, in
one transaction) with 1M shops and 1M consents loaded, against the same with
1k loaded, in the same run.

``consent_checks``: the gate's consent work per read (the artefact check and
the counted use) against the foundation's switch (one query for an active,
unexpired consent naming the category), on the same database, one after the
other.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import psycopg
from sqlalchemy import text

from bench.common import Size, hub_server, libpq, percentile, report, scratch_postgres
from bench.setup import make_shop, migrated_admin_key, post_sales, sales_lines
from consent import enforcement
from consent import service as consents
from consent.schemas import ConsentIn
from cornerstore.authz import PurposeName
from cornerstore.categories import Category
from cornerstore.db import make_engine, session_scope, utcnow
from cornerstore.identity import Caller
from cornerstore.models.principals import Role
from cornerstore.settings import Environment, Settings
from hub.runtime import Hub

PROPAGATION_GOAL_S = 1.0
WORKERS = 4


# --- propagation ------------------------------------------------------------------------------


def run_propagation(size: Size) -> dict[str, float]:
    rounds = size.pick(2, 20)
    delays: list[float] = []
    read_rtts: list[float] = []
    leaked = 0
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as data_dir:
        admin_key = migrated_admin_key(url, Path(data_dir))
        with ExitStack() as stack:
            bases = [
                stack.enter_context(hub_server(url, Path(data_dir), workers=1)).base_url
                for _ in range(WORKERS)
            ]
            setup = stack.enter_context(httpx.Client(base_url=bases[0], timeout=30))
            shop = make_shop(setup, admin_key)
            post_sales(setup, shop, httpx_json({"records": sales_lines(20)}))
            keeper = {"Authorization": f"Bearer {shop.keeper_key}"}
            reader = {"Authorization": f"Bearer {shop.consumer_key}"}
            clients = [
                stack.enter_context(httpx.Client(base_url=b, headers=reader, timeout=30))
                for b in bases
            ]
            path = f"/v1/shops/{shop.shop_id}/sales"
            params = {"purpose": "analytics", "limit": "5"}
            consumer_id, first = _consumer_of(setup, shop.shop_id, keeper)
            # Each round's consent must be the only one that lets the reader in.
            setup.post(
                f"/v1/shops/{shop.shop_id}/consents/{first}/revoke", headers=keeper
            ).raise_for_status()
            for _ in range(rounds):
                grant = setup.post(
                    f"/v1/shops/{shop.shop_id}/consents",
                    json={
                        "consumer_id": consumer_id,
                        "purpose": "analytics",
                        "categories": ["sales"],
                        "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                    },
                    headers=keeper,
                )
                grant.raise_for_status()
                for client in clients:
                    started = time.monotonic()
                    client.get(path, params=params).raise_for_status()
                    read_rtts.append(time.monotonic() - started)
                round_delays, round_leaks = _revoke_while_reading(
                    setup, clients, path, params, keeper, shop.shop_id, grant.json()["id"]
                )
                delays.extend(round_delays)
                leaked += round_leaks
    if leaked:
        raise RuntimeError(f"{leaked} reads that started after a revocation returned data")
    p50, p99 = percentile(delays, 0.5), percentile(delays, 0.99)
    rtt = statistics.median(read_rtts)
    report(
        f"propagation: revocation to refusal, {WORKERS} worker processes, {rounds} rounds "
        "(PostgreSQL)",
        [
            (
                "commit to each worker's first refusal",
                f"p50 {p50 * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms",
            ),
            ("baseline: one allowed read's round trip", f"p50 {rtt * 1000:7.1f} ms"),
            ("ratio (p50 / read round trip)", f"{p50 / rtt:7.1f}x"),
            ("reads started after the commit that returned data", f"{leaked}"),
            ("goal", f"p99 <= {PROPAGATION_GOAL_S:g} s"),
        ],
    )
    return {
        "consent_propagation_p50_ms": p50 * 1000,
        "consent_propagation_p99_ms": p99 * 1000,
        "consent_read_rtt_ms": rtt * 1000,
    }


def _revoke_while_reading(
    setup: httpx.Client,
    clients: list[httpx.Client],
    path: str,
    params: dict[str, str],
    keeper: dict[str, str],
    shop_id: str,
    consent_id: str,
) -> tuple[list[float], int]:
    """Revoke while every worker is read; each worker's delay to its first refusal, and leaks."""
    stop = threading.Event()
    # Per worker: (started, ended, status) of every read; status -1 for a transport error.
    reads: list[list[tuple[float, float, int]]] = [[] for _ in clients]

    def hammer(number: int) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = clients[number].get(path, params=params).status_code
            except httpx.TransportError:
                status = -1
            reads[number].append((started, time.monotonic(), status))

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(len(clients))]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    revoked = setup.post(f"/v1/shops/{shop_id}/consents/{consent_id}/revoke", headers=keeper)
    answered = time.monotonic()
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join()
    revoked.raise_for_status()
    errors = sum(1 for worker in reads for _, _, status in worker if status == -1)
    if errors:
        raise RuntimeError(f"{errors} reads failed in transport")
    delays = []
    for number, worker in enumerate(reads):
        refused = [ended for _, ended, status in worker if status == 404 and ended >= answered]
        if not refused:
            tail = [
                (round(s - answered, 3), round(e - answered, 3), st) for s, e, st in worker[-5:]
            ]
            raise RuntimeError(f"worker {number} never refused a read after the revocation: {tail}")
        delays.append(min(refused) - answered)
    leaks = sum(
        1
        for worker in reads
        for started, _, status in worker
        if started > answered and status != 404
    )
    return delays, leaks


def httpx_json(doc: object) -> bytes:
    return json.dumps(doc).encode()


def _consumer_of(client: httpx.Client, shop_id: str, keeper: dict[str, str]) -> tuple[str, str]:
    """The bench shop's consumer and the consent it was first given."""
    listed = client.get(f"/v1/shops/{shop_id}/consents", headers=keeper)
    listed.raise_for_status()
    (consent,) = listed.json()["consents"]
    return str(consent["consumer_id"]), str(consent["id"])


# --- writes with a million shops ---------------------------------------------------------------


@contextmanager
def _loaded_hub(shops: int) -> Iterator[tuple[Hub, list[uuid.UUID], uuid.UUID, uuid.UUID]]:
    """A hub on a scratch database holding ``shops`` shops with one active consent each."""
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as data_dir:
        migrated_admin_key(url, Path(data_dir))
        shop_ids = [uuid.uuid4() for _ in range(shops)]
        consumer, keeper = uuid.uuid4(), uuid.uuid4()
        now = "2026-11-01T00:00:00Z"
        with psycopg.connect(libpq(url)) as connection, connection.cursor() as cursor:
            with cursor.copy("COPY shops (id, name, created_at) FROM STDIN") as copy:
                for shop_id in shop_ids:
                    copy.write_row((shop_id, "s", now))
            with cursor.copy("COPY principals (id, name, role, created_at) FROM STDIN") as copy:
                copy.write_row((consumer, "c", "consumer", now))
                copy.write_row((keeper, "k", "shopkeeper", now))
            with cursor.copy(
                "COPY consents (id, shop_id, consumer_id, purpose, categories, status, version, "
                "access_mode, range_last_days, data_life_seconds, valid_from, expires_at, "
                "created_at, updated_at, granted_by, granted_at, paused_by_shop, uses, day_uses) "
                "FROM STDIN"
            ) as copy:
                for shop_id in shop_ids:
                    copy.write_row(
                        (
                            uuid.uuid4(),
                            shop_id,
                            consumer,
                            "analytics",
                            '["sales"]',
                            "active",
                            1,
                            "rows",
                            365,
                            86400,
                            now,
                            "2099-01-01T00:00:00Z",
                            now,
                            now,
                            keeper,
                            now,
                            False,
                            0,
                            0,
                        )
                    )
            cursor.execute("ANALYZE")
            connection.commit()
        settings = Settings(environment=Environment.test, database_url=url, data_dir=Path(data_dir))
        hub = Hub.open(settings, engine=make_engine(url))
        try:
            yield hub, shop_ids, consumer, keeper
        finally:
            hub.close()


def _write_pairs(
    hub: Hub, shop_ids: list[uuid.UUID], consumer: uuid.UUID, keeper: uuid.UUID, pairs: int
) -> float:
    """Grant-then-revoke pairs on random shops; returns changes per second."""
    expires = utcnow() + timedelta(days=30)
    started = time.perf_counter()
    for n in range(pairs):
        shop_id = shop_ids[(n * 7919) % len(shop_ids)]
        caller = Caller(keeper, "k", Role.shopkeeper, frozenset([shop_id]))
        ctx = consents.context(hub, caller, hub.authorizer.policy_version, utcnow())
        with session_scope(hub.sessions) as session:
            granted = consents.grant(
                session,
                ctx,
                shop_id,
                ConsentIn(
                    consumer_id=consumer,
                    purpose=PurposeName.analytics,
                    categories=[Category.sales],
                    expires_at=expires,
                ),
            )
        with session_scope(hub.sessions) as session:
            consents.revoke(session, ctx, shop_id, granted.id)
    return 2 * pairs / (time.perf_counter() - started)


def run_writes(size: Size) -> dict[str, float]:
    small, large = size.pick(100, 1_000), size.pick(1_000, 1_000_000)
    pairs = size.pick(20, 500)
    rates: dict[int, float] = {}
    for shops in (small, large):
        with _loaded_hub(shops) as (hub, shop_ids, consumer, keeper):
            _write_pairs(hub, shop_ids, consumer, keeper, 10)  # warm up
            rates[shops] = _write_pairs(hub, shop_ids, consumer, keeper, pairs)
    ratio = rates[large] / rates[small]
    report(
        f"consent_writes: grant + revoke through the consent service, {pairs} pairs (PostgreSQL)",
        [
            (f"with {large:,} shops and consents loaded", f"{rates[large]:8.1f} changes/s"),
            (f"baseline: {small:,} shops loaded", f"{rates[small]:8.1f} changes/s"),
            ("ratio", f"{ratio:8.2f}"),
        ],
    )
    return {
        "consent_changes_per_s_large": rates[large],
        "consent_changes_per_s_small": rates[small],
        "consent_changes_ratio": ratio,
    }


# --- the checks on the read path -------------------------------------------------------------

_SWITCH = text(
    "SELECT id, categories FROM consents WHERE shop_id = :shop_id AND consumer_id = :consumer_id "
    "AND purpose = :purpose AND status = 'active' AND expires_at > :at ORDER BY expires_at DESC"
)


def run_checks(size: Size) -> dict[str, float]:
    samples = size.pick(200, 5_000)
    with _loaded_hub(size.pick(100, 10_000)) as (hub, shop_ids, consumer, _keeper):
        switch: list[float] = []
        checks: list[float] = []
        with hub.sessions() as session:
            for n in range(samples):
                shop_id = shop_ids[n % len(shop_ids)]
                now = utcnow()
                tick = time.perf_counter()
                rows = session.execute(
                    _SWITCH,
                    {
                        "shop_id": shop_id,
                        "consumer_id": consumer,
                        "purpose": "analytics",
                        "at": now,
                    },
                ).all()
                found = next((r.id for r in rows if "sales" in r.categories), None)
                tock = time.perf_counter()
                allowance = enforcement.check(
                    session,
                    shop_id=shop_id,
                    consumer_id=consumer,
                    purpose="analytics",
                    category="sales",
                    since=None,
                    until=None,
                    now=now,
                )
                hub.consent_check.count(allowance, now)
                done = time.perf_counter()
                if found != allowance.consent_id:
                    raise RuntimeError("the switch and the artefact check disagree")
                switch.append((tock - tick) * 1e6)
                checks.append((done - tock) * 1e6)
    s50, c50 = percentile(switch, 0.5), percentile(checks, 0.5)
    report(
        f"consent_checks: the gate's consent work per read, {samples:,} reads (PostgreSQL)",
        [
            (
                "artefact check + counted use",
                f"p50 {c50:8.1f} µs   p99 {percentile(checks, 0.99):8.1f} µs",
            ),
            (
                "baseline: the foundation's switch (one query)",
                f"p50 {s50:8.1f} µs   p99 {percentile(switch, 0.99):8.1f} µs",
            ),
            ("ratio (p50)", f"{c50 / s50:8.2f}x"),
        ],
    )
    return {"consent_check_p50_us": c50, "consent_switch_p50_us": s50}
