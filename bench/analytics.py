"""Analytics ``analytics``: a DP query across 5,000 shops' 10M sale lines, against DuckDB.

5,000 shops (10 districts) with a consent for one analytics consumer; 10M
sale lines over 13 weeks and 500 SKUs, drawn with numpy. The lines are added
up and sealed into weekly rollups, as the hub's rollup builder would have
left them (the builder's own rate, from records, is measured on a sample and
printed beside). Then, in this process, as ``POST /v1/analytics/queries``
runs it:

- the first query on a cold cache (it opens every rollup);
- the same query warm, against DuckDB's ``GROUP BY`` over the same plaintext
  lines held in memory (the baseline);
- a query right after a shop's consent is revoked: the shop is not counted.
"""

from __future__ import annotations

import itertools
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import psycopg
from sqlalchemy import select, update

from analytics import rollups, service
from analytics.schemas import QueryIn
from bench.common import Size, libpq, migrated_postgres, report
from connectors import service as ingestion
from cornerstore.categories import Category
from cornerstore.db import make_engine, session_scope
from cornerstore.identity import Caller
from cornerstore.models.audit import AuditEntryShop
from cornerstore.models.consent import Consent, ConsentStatus
from cornerstore.models.principals import Role
from cornerstore.settings import Environment, Settings
from hub.principals import service as principals
from hub.principals.schemas import PrincipalIn
from hub.runtime import Hub
from hub.shops import service as shops
from hub.shops.schemas import ShopIn

GOAL_RATIO = 0.5
COLD_GOAL_S = 60.0
FIRST_WEEK = date(2026, 8, 31)  # a Monday
WEEKS = 13


@dataclass(frozen=True)
class Lines:
    shop: np.ndarray[Any, np.dtype[np.int64]]
    day: np.ndarray[Any, np.dtype[np.int64]]
    sku: np.ndarray[Any, np.dtype[np.int64]]
    quantity: np.ndarray[Any, np.dtype[np.int64]]
    price: np.ndarray[Any, np.dtype[np.int64]]


def _lines(count: int, shop_count: int, skus: int) -> Lines:
    rng = np.random.default_rng(13)
    return Lines(
        shop=rng.integers(0, shop_count, count),
        day=rng.integers(0, 7 * WEEKS, count),
        sku=rng.integers(0, skus, count),
        quantity=rng.integers(1, 5, count),
        price=rng.integers(100, 5000, count),
    )


@contextmanager
def _hub(url: str) -> Iterator[Hub]:
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            environment=Environment.test,
            database_url=url,
            data_dir=Path(scratch),
            rollup_interval_seconds=None,
        )
        hub = Hub.open(settings, engine=make_engine(url))
        try:
            yield hub
        finally:
            hub.close()


def _shops(hub: Hub, count: int, districts: int) -> tuple[list[uuid.UUID], Caller]:
    ids = []
    with session_scope(hub.sessions) as session:
        analyst = principals.create(session, PrincipalIn(name="Market Lens", role=Role.consumer))
        for n in range(count):
            made = shops.create(
                session,
                hub.keyring,
                ShopIn(name=f"Shop {n}", district=f"District {n % districts}"),
            )
            ids.append(made.id)
    return ids, Caller(id=analyst.id, name=analyst.name, role=Role.consumer, shop_ids=frozenset())


def _consents(url: str, shop_ids: list[uuid.UUID], consumer_id: uuid.UUID) -> None:
    """Consents as granted ones are stored (the grant path has its own benchmark)."""
    now = datetime.now(UTC)
    columns = (
        "id, shop_id, consumer_id, purpose, categories, status, version, access_mode, "
        "data_life_seconds, valid_from, expires_at, created_at, updated_at, paused_by_shop, "
        "uses, day_uses"
    )
    with psycopg.connect(libpq(url)) as connection, connection.cursor() as cursor:
        with cursor.copy(f"COPY consents ({columns}) FROM STDIN") as copy:
            for shop_id in shop_ids:
                copy.write_row(
                    (
                        uuid.uuid4(),
                        shop_id,
                        consumer_id,
                        "analytics",
                        json.dumps(["sales"]),
                        "active",
                        1,
                        "aggregate-only",
                        86400 * 90,
                        now - timedelta(days=1),
                        now + timedelta(days=90),
                        now,
                        now,
                        False,
                        0,
                        0,
                    )
                )


def _seal_rollups(hub: Hub, url: str, lines: Lines, shop_ids: list[uuid.UUID]) -> float:
    """Add the lines up per shop, week, SKU and day; seal each shop-week as the builder does."""
    started = time.perf_counter()
    order = np.lexsort((lines.day, lines.sku, lines.day // 7, lines.shop))
    shop, day, sku = lines.shop[order], lines.day[order], lines.sku[order]
    quantity, revenue = lines.quantity[order], (lines.quantity * lines.price)[order]
    key = ((shop * (7 * WEEKS) + day) * 1000) + sku
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    run = {
        "shop": shop[starts],
        "day": day[starts],
        "sku": sku[starts],
        "count": np.diff(np.r_[starts, key.size]),
        "quantity": np.add.reduceat(quantity, starts),
        "revenue": np.add.reduceat(revenue, starts),
    }
    week_of = run["shop"] * WEEKS + run["day"] // 7
    bounds = np.flatnonzero(np.r_[True, week_of[1:] != week_of[:-1], True])
    # Built by the builder some time before the queries, as in a running hub.
    built = datetime.now(UTC) - timedelta(hours=1)
    with (
        hub.sessions() as session,
        psycopg.connect(libpq(url)) as connection,
        connection.cursor() as cursor,
        cursor.copy(
            "COPY analytics_rollups (shop_id, category, week_start, sealed, key_version, "
            "built_at) FROM STDIN"
        ) as copy,
    ):
        for lo, hi in itertools.pairwise(bounds):
            shop_id = shop_ids[int(run["shop"][lo])]
            week = FIRST_WEEK + timedelta(weeks=int(run["day"][lo]) // 7)
            sums = rollups.WeekSums(
                week,
                (run["day"][lo:hi] % 7).tolist(),
                [f"SKU-{s:03d}" for s in run["sku"][lo:hi].tolist()],
                run["count"][lo:hi].tolist(),
                run["quantity"][lo:hi].tolist(),
                run["revenue"][lo:hi].tolist(),
            )
            cipher = hub.keyring.cipher(session, shop_id)
            sealed = cipher.seal(
                rollups.KIND, rollups.FIELD, week.isoformat().encode(), sums.encode()
            )
            copy.write_row((shop_id, "sales", week, sealed, cipher.version, built))
    return time.perf_counter() - started


def _builder_rate(hub: Hub, shop_ids: list[uuid.UUID], count: int) -> tuple[float, float]:
    """Ingest ``count`` sale lines as records, then roll them up as the builder does.

    Returns lines a second for each: what a running hub sustains from records.
    """
    connector = Caller(uuid.uuid4(), "bench till", Role.connector, frozenset(shop_ids))
    shops = shop_ids[: max(1, count // 2000)]
    per_shop = count // len(shops)
    started = time.perf_counter()
    for n, shop_id in enumerate(shops):
        lines = [
            {
                "event_id": f"R-{n}-{k}",
                "occurred_at": (
                    datetime.combine(FIRST_WEEK, datetime.min.time(), UTC)
                    + timedelta(minutes=61 * k)
                ).isoformat(),
                "sku": f"SKU-{k % 500:03d}",
                "quantity": 1 + k % 4,
                "unit_price_cents": 100 + (k * 37) % 4900,
            }
            for k in range(per_shop)
        ]
        with session_scope(hub.sessions) as session:
            cipher = hub.keyring.cipher(session, shop_id)
            for at in range(0, len(lines), 5000):
                ingestion.ingest(
                    session,
                    cipher,
                    connector,
                    Category.sales,
                    lines[at : at + 5000],
                    policy_version="bench",
                )
    ingested = time.perf_counter() - started
    started = time.perf_counter()
    while True:
        with session_scope(hub.sessions) as session:
            if not rollups.build_round(session, hub.keyring):
                break
    built = time.perf_counter() - started
    stored = per_shop * len(shops)
    return stored / ingested, stored / built


def _duckdb(lines: Lines, districts: int, repeats: int) -> tuple[float, int]:
    table = {
        "shop": lines.shop,
        "district": lines.shop % districts,
        "week": lines.day // 7,
        "sku": lines.sku,
        "quantity": lines.quantity,
        "revenue": lines.quantity * lines.price,
    }
    con = duckdb.connect()
    con.register("sales", table)
    times, cells = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        cells = len(
            con.execute(
                "SELECT sku, district, week, count(*), sum(quantity), sum(revenue) "
                "FROM sales GROUP BY ALL"
            ).fetchall()
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times), cells


def _ask(hub: Hub, caller: Caller, query: QueryIn) -> tuple[float, Any]:
    with hub.sessions() as session:
        started = time.perf_counter()
        answer = service.ask(session, hub, caller, query, policy_version="bench")
        taken = time.perf_counter() - started
        session.commit()
    return taken, answer


def run(size: Size) -> dict[str, float]:
    shop_count = size.pick(30, 5_000)
    line_count = size.pick(10_000, 10_000_000)
    districts, skus = 10, size.pick(50, 500)
    repeats = size.pick(2, 5)
    lines = _lines(line_count, shop_count, skus)
    query = QueryIn.model_validate(
        {
            "purpose": "analytics",
            "category": "sales",
            "measures": ["count", "sum_quantity", "sum_revenue_cents"],
            "group_by": ["sku", "district", "week"],
            "since": f"{FIRST_WEEK.isoformat()}T00:00:00Z",
            "until": f"{(FIRST_WEEK + timedelta(weeks=WEEKS)).isoformat()}T00:00:00Z",
            "epsilon": 0.5,
        }
    )
    with migrated_postgres() as url, _hub(url) as hub:
        shop_ids, analyst = _shops(hub, shop_count, districts)
        _consents(url, shop_ids, analyst.id)
        sealing = _seal_rollups(hub, url, lines, shop_ids)
        cold, first = _ask(hub, analyst, query)
        warm = statistics.median(_ask(hub, analyst, query)[0] for _ in range(repeats))
        with hub.engine.begin() as connection:
            connection.execute(
                update(Consent)
                .where(Consent.shop_id == shop_ids[0])
                .values(status=ConsentStatus.revoked)
            )
        _, after = _ask(hub, analyst, query)
        with hub.sessions() as session:
            newest = session.scalar(select(AuditEntryShop.seq).order_by(AuditEntryShop.seq.desc()))
            counted = set(
                session.scalars(select(AuditEntryShop.shop_id).where(AuditEntryShop.seq == newest))
            )
        # Last, as it rewrites some shops' rollups from records of its own.
        ingest_rate, build_rate = _builder_rate(hub, shop_ids, size.pick(4_000, 200_000))
    baseline, cells = _duckdb(lines, districts, repeats)
    if after.shops != shop_count - 1 or shop_ids[0] in counted:
        raise RuntimeError("a revoked shop was counted")
    ratio = baseline / warm
    report(
        f"analytics: DP query over {line_count:,} sale lines, {shop_count:,} shops, "
        f"{WEEKS} weeks, {skus} SKUs, {districts} districts (PostgreSQL, in process)",
        [
            ("seal weekly rollups from the lines", f"{sealing:8.2f} s"),
            (
                "from records instead (a sample): ingest / roll up",
                f"{ingest_rate:,.0f} / {build_rate:,.0f} lines/s",
            ),
            ("first query, cold cache (opens every rollup)", f"{cold:8.2f} s   goal <= 60 s"),
            ("same query, warm (median)", f"{warm:8.3f} s"),
            ("baseline: DuckDB GROUP BY, same lines in memory", f"{baseline:8.3f} s"),
            ("ratio (baseline / warm)", f"{ratio:8.2f}x   goal >= {GOAL_RATIO}x"),
            (
                "cells: DuckDB / candidates / released",
                f"{cells:,} / {first.suppressed + len(first.cells):,} / {len(first.cells):,}",
            ),
            ("noise", json.dumps(first.noise.model_dump(), separators=(",", ":"))[:200]),
            ("after one revocation", f"{after.shops:,} shops counted; the revoked one not"),
        ],
    )
    return {
        "analytics_build_lines_per_s": build_rate,
        "analytics_cold_s": cold,
        "analytics_warm_s": warm,
        "analytics_duckdb_s": baseline,
        "analytics_ratio": ratio,
    }
