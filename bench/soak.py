"""Soak: mixed traffic from several client processes against 4 workers on PostgreSQL.

Connectors ingest batches, consumers read under their consent, shopkeepers
grant and revoke consents, auditors and shopkeepers read the audit log, all at
once for the whole run (10 minutes; 6 seconds at smoke size). It prints the
errors (goal 0: a 5xx, a dropped connection, or an answer other than the one
the operation must give), p50 and p99 latency per operation, how soon a
signed checkpoint covers each audit entry (goal: p99 within a second), and each
worker's resident memory a tenth of the way in and at the end (goal: growth
of at most 10%, so that nothing accumulates per request).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg

from bench.common import (
    BenchServer,
    Size,
    hub_server,
    libpq,
    migrated_postgres,
    percentile,
    report,
)
from bench.setup import BenchShop, make_shop, migrated_admin_key, sales_lines

SERVER_WORKERS = 4
CLIENTS = 6
SHOPS = 6
BATCH = 50
GROWTH_GOAL = 0.10
#: Every audit entry is covered by a signed checkpoint within this, under load.
CHECKPOINT_GOAL_S = 1.0
#: How often each client picks each operation.
MIX = ("ingest",) * 3 + ("read",) * 4 + ("consent",) + ("audit",) * 2


@dataclass
class Plan:
    """What one client process drives: its shops and keys, and until when."""

    number: int
    base_url: str
    shops: list[BenchShop]
    churn_consumer_id: str
    auditor_key: str
    deadline: float


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        for op, samples in other.latencies.items():
            self.latencies.setdefault(op, []).extend(samples)
        self.errors.update(other.errors)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class _Client:
    """One client process's loop: an operation at a time, timed, its answer checked."""

    def __init__(self, plan: Plan, http: httpx.Client) -> None:
        self.plan = plan
        self.http = http
        self.tally = Tally()
        self.sent = 0

    def call(self, op: str, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            self.tally.errors[f"{op}: {type(exc).__name__}"] += 1
            return None
        self.tally.latencies.setdefault(op, []).append(time.perf_counter() - started)
        if response.status_code != expect:
            self.tally.errors[f"{op}: {response.status_code}"] += 1
            return None
        return response.json() if "json" in response.headers.get("content-type", "") else None

    def ingest(self, shop: BenchShop) -> None:
        start = 10**9 * (self.plan.number + 1) + self.sent
        self.sent += BATCH
        body = {"records": sales_lines(BATCH, start=start)}
        self.call(
            "ingest",
            "POST",
            f"/v1/shops/{shop.shop_id}/sales",
            200,
            json=body,
            headers=_bearer(shop.connector_key),
        )

    def read(self, shop: BenchShop) -> None:
        self.call(
            "read",
            "GET",
            f"/v1/shops/{shop.shop_id}/sales",
            200,
            params={"purpose": "analytics", "limit": "100"},
            headers=_bearer(shop.consumer_key),
        )

    def consent(self, shop: BenchShop) -> None:
        """A shopkeeper grants a consent, and revokes it again."""
        expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        granted = self.call(
            "consent grant",
            "POST",
            f"/v1/shops/{shop.shop_id}/consents",
            201,
            json={
                "consumer_id": self.plan.churn_consumer_id,
                "purpose": "replenishment",
                "categories": ["sales"],
                "expires_at": expires,
            },
            headers=_bearer(shop.keeper_key),
        )
        if granted is not None:
            self.call(
                "consent revoke",
                "POST",
                f"/v1/shops/{shop.shop_id}/consents/{granted['id']}/revoke",
                200,
                headers=_bearer(shop.keeper_key),
            )

    def audit(self, shop: BenchShop) -> None:
        self.call(
            "audit events",
            "GET",
            "/v1/audit/events",
            200,
            params={"limit": "50"},
            headers=_bearer(self.plan.auditor_key),
        )
        self.call(
            "access log",
            "GET",
            f"/v1/shops/{shop.shop_id}/access-log",
            200,
            params={"limit": "50"},
            headers=_bearer(shop.keeper_key),
        )


def drive(plan: Plan) -> Tally:
    """The body of one client process."""
    with httpx.Client(base_url=plan.base_url, timeout=60) as http:
        client = _Client(plan, http)
        turn = 0
        while time.monotonic() < plan.deadline:
            shop = plan.shops[turn % len(plan.shops)]
            getattr(client, MIX[(turn * 7 + plan.number) % len(MIX)])(shop)
            turn += 1
        return client.tally


def _principal(http: httpx.Client, admin_key: str, role: str) -> dict[str, Any]:
    response = http.post(
        "/v1/principals",
        json={"name": f"soak {role}", "role": role, "shop_ids": []},
        headers=_bearer(admin_key),
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _memory(server: BenchServer, seconds: float, deadline: float) -> tuple[dict[int, float], ...]:
    """Each worker's RSS at ``seconds`` after the start, and just before ``deadline``."""
    time.sleep(seconds)
    early = server.worker_rss_mib()
    time.sleep(max(0.0, deadline - time.monotonic() - 1))
    return early, server.worker_rss_mib()


def run(size: Size) -> dict[str, float]:
    duration = size.pick(6, 600)
    with migrated_postgres() as url, tempfile.TemporaryDirectory() as data_dir:
        admin_key = migrated_admin_key(url, Path(data_dir))
        with (
            hub_server(url, Path(data_dir), workers=SERVER_WORKERS) as server,
            httpx.Client(base_url=server.base_url, timeout=60) as http,
        ):
            shops = [make_shop(http, admin_key) for _ in range(SHOPS)]
            auditor = _principal(http, admin_key, "auditor")
            # A consumer of its own for each client's grants: a grant replaces the
            # same consumer's live consent for the purpose, so clients sharing one
            # would revoke what another had replaced, and rightly get 409.
            churn = [_principal(http, admin_key, "consumer")["id"] for _ in range(CLIENTS)]
            deadline = time.monotonic() + duration
            plans = [
                Plan(n, server.base_url, shops, churn[n], auditor["api_key"], deadline)
                for n in range(CLIENTS)
            ]
            with ProcessPoolExecutor(CLIENTS) as pool:
                tallies = pool.map(drive, plans)
                early, late = _memory(server, duration / 10, deadline)
                total = Tally()
                for tally in tallies:
                    total.add(tally)
            time.sleep(1.5)  # the last entries' checkpoint
            lags = _checkpoint_lags(url)
    return _report(total, early, late, duration, lags)


def _checkpoint_lags(url: str) -> list[float]:
    """For each audit entry, the seconds until a signed checkpoint covered it."""
    with psycopg.connect(libpq(url)) as connection:
        entries = connection.execute(
            "SELECT seq, recorded_at FROM audit_entries ORDER BY seq"
        ).fetchall()
        signed = connection.execute(
            "SELECT size, created_at FROM audit_checkpoints ORDER BY size"
        ).fetchall()
    lags = []
    position = 0
    for seq, recorded_at in entries:
        while position < len(signed) and signed[position][0] < seq:
            position += 1
        if position == len(signed):
            lags.append(float("inf"))  # never covered
            continue
        lags.append((signed[position][1] - recorded_at).total_seconds())
    return lags


def _report(
    total: Tally,
    early: dict[int, float],
    late: dict[int, float],
    duration: int,
    lags: list[float],
) -> dict[str, float]:
    rows = [
        (
            op,
            f"{len(samples):>7,} calls  p50 {percentile(samples, 0.5) * 1000:7.1f} ms  "
            f"p99 {percentile(samples, 0.99) * 1000:7.1f} ms",
        )
        for op, samples in sorted(total.latencies.items())
    ]
    errors = sum(total.errors.values())
    rows.append(
        ("errors", f"{errors}  (goal 0){'  ' + json.dumps(total.errors) if errors else ''}")
    )
    lag_p50, lag_p99 = percentile(lags, 0.5), percentile(lags, 0.99)
    rows.append(
        (
            "audit entry → signed checkpoint",
            f"{len(lags):>7,} entries  p50 {lag_p50 * 1000:7.1f} ms  p99 {lag_p99 * 1000:7.1f} ms"
            f"  (goal p99 <= {CHECKPOINT_GOAL_S:.0f} s)",
        )
    )
    growths = []
    for number, pid in enumerate(sorted(early)):
        if pid not in late:
            rows.append((f"worker {number + 1} RSS", f"{early[pid]:.0f} MiB, then restarted"))
            growths.append(float("inf"))
            continue
        growth = late[pid] / early[pid] - 1
        growths.append(growth)
        rows.append(
            (
                f"worker {number + 1} RSS",
                f"{early[pid]:6.1f} MiB at {duration / 10:.0f} s, {late[pid]:6.1f} MiB at "
                f"{duration} s: {growth:+.1%}  (goal <= +{GROWTH_GOAL:.0%})",
            )
        )
    report(
        f"soak: {duration} s of mixed traffic from {CLIENTS} client processes, "
        f"{SERVER_WORKERS} server workers (PostgreSQL)",
        rows,
    )
    figures = {
        f"soak_{op.replace(' ', '_')}_p99_ms": percentile(samples, 0.99) * 1000
        for op, samples in total.latencies.items()
    }
    figures["soak_errors"] = errors
    figures["soak_checkpoint_lag_p99_s"] = lag_p99
    figures["soak_rss_growth_max"] = max(growths)
    # Latency and memory are figures to read; an error is a defect, at any size.
    assert errors == 0, dict(total.errors)
    return figures
