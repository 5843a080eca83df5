"""Web ``console``: each page's time with 1M shops and 10M audit entries, beside its API call.

A migrated PostgreSQL database gets one shop built through the API as a
shopkeeper would have it (a shopkeeper, a connector that sent today's sales
and stock counts, a consumer with a live consent, another one waiting for an
answer, an auditor); then, with the server stopped, 1M more shops and 10M
audit entries are bulk loaded. The entries continue the log's chain and
Merkle tree exactly as appends would (so every proof a page checks verifies),
dated over the past 30 days, about every consumer, purpose and outcome, and
about one in 5,000 names the measured shop, so its access log runs deep.

The server (the hub, ``WORKERS`` processes) is then asked for each page, as
the shopkeeper's or the auditor's browser session, and for the API call that
feeds it, as the same principal's key: one after another on loopback, so a
time is the server's plus a loopback round trip. Pages are checked to show
what they should (the access log's verified marks, the chart's data).
"""

from __future__ import annotations

import random
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import psycopg
from psycopg.types.json import Json

from audit import tree
from audit_verifier import chain, merkle
from bench.common import (
    Size,
    hub_server,
    libpq,
    migrated_postgres,
    percentile,
    report,
)
from bench.setup import BenchShop, make_shop, migrated_admin_key

PAGE_GOAL_MS = 100.0

#: Filler shops' ids: ``uuid.UUID(int=SHOP_BASE + k)``, so none has to be kept in memory.
SHOP_BASE = 0x5E1F << 112


@dataclass(frozen=True)
class Loaded:
    shops: int
    entries: int
    seconds: float


def _load_shops(database_url: str, count: int) -> None:
    created = datetime.now(UTC) - timedelta(days=400)
    with (
        psycopg.connect(libpq(database_url)) as connection,
        connection.cursor() as cursor,
        cursor.copy("COPY shops (id, name, district, created_at) FROM STDIN") as copy,
    ):
        for k in range(count):
            copy.write_row((uuid.UUID(int=SHOP_BASE + k), f"Shop {k}", "Bench", created))


# What the filler says: mostly reads, some refused, and the log's other business.
_PURPOSES = ("replenishment", "analytics", "credit-assessment")
_REFUSALS = ("no active consent", "consent paused", "daily read limit reached", "consent revoked")


def _filler(
    seq: int, at: datetime, rng: random.Random, shop: uuid.UUID, consumers: list[uuid.UUID]
) -> dict[str, Any]:
    """The chained fields of one plausible entry, as ``AuditEntry`` holds them."""
    roll = rng.random()
    consumer = rng.choice(consumers)
    fields: dict[str, Any] = {
        "seq": seq,
        "recorded_at": at,
        "principal_id": consumer,
        "principal_role": "consumer",
        "shop_id": shop,
        "policy_version": "3",
    }
    if roll < 0.80:
        allowed = rng.random() < 0.93
        fields |= {
            "action": "read",
            "decision": "allow" if allowed else "deny",
            "reason": "consent" if allowed else rng.choice(_REFUSALS),
            "category": rng.choice(("sales", "inventory", "payments")),
            "purpose": rng.choice(_PURPOSES),
            "details": {"records": rng.randrange(1, 500)} if allowed else {},
        }
    elif roll < 0.95:
        fields |= {
            "action": "ingest",
            "decision": "allow",
            "reason": "accepted",
            "principal_id": uuid.UUID(int=shop.int ^ 1),
            "principal_role": "connector",
            "category": "sales",
            "purpose": None,
            "details": {"accepted": rng.randrange(1, 200), "duplicates": 0, "rejected": 0},
        }
    else:
        action = rng.choice(("consent.grant", "consent.pause", "consent.resume", "consent.revoke"))
        fields |= {
            "action": action,
            "decision": "allow",
            "reason": "shopkeeper",
            "category": None,
            "purpose": rng.choice(_PURPOSES),
            "details": {"consent_id": str(uuid.UUID(int=rng.getrandbits(128)))},
        }
    return fields


_ENTRY_COLUMNS = (*chain.CHAINED_FIELDS, "prev_hash", "entry_hash")


def _secondary_indexes(connection: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = connection.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_entries' "
        "AND indexname <> 'pk_audit_entries'"
    ).fetchall()
    return [(str(name), str(definition)) for name, definition in rows]


def _load_log(database_url: str, count: int, shops: int, subject: uuid.UUID) -> None:
    """Append ``count`` entries after the head: entries, tree nodes and head, as appends would.

    Entries and nodes stream through two connections at once, so that neither
    is held in memory. The entries' secondary indexes are dropped for the load
    and built again from their own definitions after it, as a bulk load would.
    """
    rng = random.Random(5)
    consumers = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(300)]
    with (
        psycopg.connect(libpq(database_url)) as entries,
        psycopg.connect(libpq(database_url)) as nodes,
    ):
        seq, prev, frontier = entries.execute(
            "SELECT seq, entry_hash, frontier FROM audit_head WHERE id = 1 FOR UPDATE"
        ).fetchone() or (0, bytes(32), None)
        builder = merkle.TreeBuilder.restore(seq, tree.split_frontier(frontier))
        indexes = _secondary_indexes(entries)
        for name, _ in indexes:
            entries.execute(f'DROP INDEX "{name}"')
        start = datetime.now(UTC) - timedelta(days=30)
        step = timedelta(days=30) / max(count, 1)
        columns = ", ".join(_ENTRY_COLUMNS)
        with (
            entries.cursor() as entry_cursor,
            entry_cursor.copy(f"COPY audit_entries ({columns}) FROM STDIN") as entry_copy,
            nodes.cursor() as node_cursor,
            node_cursor.copy(
                "COPY audit_nodes (level, idx, hash) FROM STDIN (FORMAT BINARY)"
            ) as node_copy,
        ):
            node_copy.set_types(["int2", "int8", "bytea"])
            for k in range(count):
                seq += 1
                shop = (
                    subject if k % 5000 == 2500 else uuid.UUID(int=SHOP_BASE + rng.randrange(shops))
                )
                fields = _filler(seq, start + step * k, rng, shop, consumers)
                encoded = chain.canonical_bytes(fields)
                this = chain.link(prev, encoded)
                for node in builder.append(merkle.leaf_hash(encoded)):
                    node_copy.write_row(node)
                row = [fields[name] for name in chain.CHAINED_FIELDS]
                row[-1] = Json(row[-1])  # details, the last chained field
                entry_copy.write_row((*row, prev, this))
                prev = this
        nodes.commit()
        entries.execute(
            "UPDATE audit_head SET seq = %s, entry_hash = %s, frontier = %s WHERE id = 1",
            (seq, prev, b"".join(builder.frontier())),
        )
        for _, definition in indexes:
            entries.execute(definition)
        entries.commit()
        entries.autocommit = True
        for table in ("audit_entries", "audit_nodes", "shops"):
            entries.execute(f"VACUUM ANALYZE {table}")


@dataclass(frozen=True)
class Subject:
    """The shop the pages are asked about, and the keys of those who look at it."""

    shop: BenchShop
    admin_key: str
    keeper_id: str
    auditor_id: str
    auditor_key: str


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _build_subject(client: httpx.Client, admin_key: str) -> Subject:
    """One shop as the API builds it: today's sales and stock, a consent, a request waiting."""
    shop = make_shop(client, admin_key)
    now = datetime.now(UTC)
    sales = [
        {
            "event_id": f"S-{n}",
            "occurred_at": (now - timedelta(minutes=25 * n)).isoformat(),
            "sku": f"SKU-{n % 40:03d}",
            "quantity": 1 + n % 3,
            "unit_price_cents": 250 + (n * 37) % 4000,
            "currency": "CNY",
        }
        for n in range(400)
    ]
    counts = [
        {"sku": f"SKU-{n:03d}", "on_hand": n % 12, "counted_at": now.isoformat()} for n in range(40)
    ]
    for category, records in (("sales", sales), ("inventory", counts)):
        sent = client.post(
            f"/v1/shops/{shop.shop_id}/{category}",
            json={"records": records},
            headers=_as(shop.connector_key),
        )
        sent.raise_for_status()
    for _ in range(20):
        client.get(
            f"/v1/shops/{shop.shop_id}/sales",
            params={"purpose": "analytics"},
            headers=_as(shop.consumer_key),
        ).raise_for_status()
    asker = client.post(
        "/v1/principals",
        json={"name": "Lucky Wholesale", "role": "consumer", "description": "Restocks shops"},
        headers=_as(admin_key),
    )
    asker.raise_for_status()
    client.post(
        f"/v1/shops/{shop.shop_id}/consent-requests",
        json={
            "purpose": "replenishment",
            "categories": ["sales", "inventory"],
            "expires_at": (now + timedelta(days=60)).isoformat(),
        },
        headers=_as(asker.json()["api_key"]),
    ).raise_for_status()
    auditor = client.post(
        "/v1/principals", json={"name": "auditor", "role": "auditor"}, headers=_as(admin_key)
    )
    auditor.raise_for_status()
    keeper = client.get("/v1/principals/me", headers=_as(shop.keeper_key))
    keeper.raise_for_status()
    return Subject(
        shop, admin_key, keeper.json()["id"], auditor.json()["id"], auditor.json()["api_key"]
    )


def _counted(database_url: str) -> float:
    """Wait until the hub's background rounds have counted every entry per day."""
    started = time.perf_counter()
    with psycopg.connect(libpq(database_url), autocommit=True) as connection:
        while True:
            behind = connection.execute(
                "SELECT h.seq - m.seq FROM audit_head h, audit_daily_count_mark m"
            ).fetchone()
            if behind is not None and behind[0] <= 0:
                return time.perf_counter() - started
            time.sleep(0.2)


def _verify_all(auditor: httpx.Client, key: str) -> float:
    """Start the full verification as the auditor's key; wait for it to pass."""
    started = time.perf_counter()
    run = auditor.post("/v1/audit/verifications", headers=_as(key))
    run.raise_for_status()
    while True:
        followed = auditor.get(run.headers["Location"], headers=_as(key)).json()
        if followed["status"] == "passed":
            return time.perf_counter() - started
        if followed["status"] != "running":
            raise RuntimeError(f"the full verification ended {followed['status']}: {followed}")
        time.sleep(0.5)


def _signed_in(base_url: str, admin_key: str, principal_id: str) -> httpx.Client:
    """A browser's session: a fresh sign-in link, opened and spent."""
    client = httpx.Client(base_url=base_url, timeout=60)
    minted = client.post(f"/v1/principals/{principal_id}/sign-in-link", headers=_as(admin_key))
    minted.raise_for_status()
    link = urlsplit(minted.json()["url"])
    form = client.get(f"{link.path}?{link.query}")
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    if token is None:
        raise RuntimeError("the sign-in page has no token field")
    spent = client.post("/sign-in", data={"token": token.group(1)})
    if spent.status_code != 303:
        raise RuntimeError(f"sign-in answered {spent.status_code}")
    return client


@dataclass(frozen=True)
class Pair:
    """A page, the API call that feeds it, and what the page must show to count."""

    label: str
    page: str
    api: str | None
    shows: Callable[[str], bool]


def _pairs(subject: Subject) -> tuple[list[Pair], list[Pair], list[Pair]]:
    shop = subject.shop.shop_id
    week = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    portal = [
        Pair(
            "portal home",
            f"/portal/shops/{shop}/",
            f"/v1/shops/{shop}/sales?limit=1000&since={week}",
            lambda text: "data-figure" in text,
        ),
        Pair(
            "portal low stock",
            f"/portal/shops/{shop}/low-stock",
            f"/v1/shops/{shop}/analytics/summary",
            lambda text: "data-on-hand" in text,
        ),
        Pair(
            "portal requests",
            f"/portal/shops/{shop}/requests",
            f"/v1/shops/{shop}/consents?status=requested",
            lambda text: "Lucky Wholesale" in text,
        ),
        Pair(
            "portal consents",
            f"/portal/shops/{shop}/consents",
            f"/v1/shops/{shop}/consents",
            lambda text: "analytics" in text.lower() or "分析" in text,
        ),
        Pair(
            "portal who read my data",
            f"/portal/shops/{shop}/access-log",
            f"/v1/shops/{shop}/access-log?limit=50",
            lambda text: text.count('class="verified"') >= 20,
        ),
        Pair("portal my data", f"/portal/shops/{shop}/my-data", "/v1/principals/me", bool),
    ]
    console = [
        Pair(
            "console overview",
            "/console/",
            "/v1/audit/checkpoint",
            lambda text: "data-consistency" in text,
        ),
        Pair(
            "console charts",
            "/console/charts",
            "/v1/audit/counts?days=14",
            lambda text: len(text.split('id="chart-data">')[-1]) > 200,
        ),
        Pair(
            "console search (refused reads)",
            "/console/events?action=read&decision=deny",
            "/v1/audit/events?action=read&decision=deny&limit=50",
            lambda text: text.count('class="entry') >= 40,
        ),
        Pair(
            "console one shop",
            f"/console/shops/{shop}",
            f"/v1/shops/{shop}/consent-history?format=json",
            lambda text: "Lucky Wholesale" in text,
        ),
    ]
    verifying = [
        Pair(
            "console verification",
            "/console/verifications/latest",
            "/v1/audit/verifications/latest",
            lambda text: 'id="verification"' in text,
        ),
    ]
    return portal, console, verifying


def _times(client: httpx.Client, url: str, headers: dict[str, str], samples: int) -> list[float]:
    taken: list[float] = []
    for _ in range(samples):
        started = time.perf_counter()
        answer = client.get(url, headers=headers)
        taken.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text[:300]}")
    return taken


def _measure(
    pairs: list[Pair], browser: httpx.Client, key: str, samples: int
) -> list[tuple[Pair, list[float], list[float] | None]]:
    measured = []
    for pair in pairs:
        shown = browser.get(pair.page)
        if shown.status_code != 200 or not pair.shows(shown.text):
            raise RuntimeError(f"{pair.label} ({pair.page}) does not show what it should")
        _times(browser, pair.page, {}, 3)  # warm up
        page = _times(browser, pair.page, {}, samples)
        api = _times(browser, pair.api, _as(key), samples) if pair.api else None
        measured.append((pair, page, api))
    return measured


def _shown(url: str) -> str:
    """An API path as the README writes it: no query, ``{id}`` for ids."""
    return re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", url.split("?")[0])


def _row(pair: Pair, page: list[float], api: list[float] | None) -> tuple[str, str]:
    p50, p95 = percentile(page, 0.5), percentile(page, 0.95)
    verdict = "ok" if p95 <= PAGE_GOAL_MS else "OVER"
    beside = (
        f"API {_shown(pair.api)}: p50 {percentile(api, 0.5):6.1f}  "
        f"p95 {percentile(api, 0.95):6.1f} ms  ratio {p95 / percentile(api, 0.95):4.1f}x"
        if api is not None and pair.api
        else "API: none feeds it alone"
    )
    return pair.label, f"p50 {p50:6.1f}  p95 {p95:6.1f} ms {verdict:4}  | {beside}"


def run(size: Size) -> dict[str, float]:
    shops = size.pick(500, 1_000_000)
    entries = size.pick(5_000, 10_000_000)
    samples = size.pick(10, 200)
    with migrated_postgres() as url, tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        admin_key = migrated_admin_key(url, data_dir)
        with hub_server(url, data_dir) as server, httpx.Client(base_url=server.base_url) as client:
            subject = _build_subject(client, admin_key)
        started = time.perf_counter()
        _load_shops(url, shops)
        _load_log(url, entries, shops, uuid.UUID(subject.shop.shop_id))
        loaded = time.perf_counter() - started
        with hub_server(url, data_dir) as server:
            counted = _counted(url)
            keeper = _signed_in(server.base_url, admin_key, subject.keeper_id)
            auditor = _signed_in(server.base_url, admin_key, subject.auditor_id)
            try:
                portal, console, verifying = _pairs(subject)
                measured = _measure(portal, keeper, subject.shop.keeper_key, samples)
                measured += _measure(console, auditor, subject.auditor_key, samples)
                verified = _verify_all(auditor, subject.auditor_key)
                measured += _measure(verifying, auditor, subject.auditor_key, samples)
            finally:
                keeper.close()
                auditor.close()
    report(
        f"console: each page {samples} times with {shops:,} shops and {entries:,} audit "
        f"entries (PostgreSQL), one request at a time, beside the API call that feeds it",
        [
            ("load: shops, entries, tree nodes, indexes", f"{loaded:7.1f} s"),
            ("then the hub's daily counts caught up with the log in", f"{counted:7.1f} s"),
            ("a full verification from the console's button took", f"{verified:7.1f} s"),
            *(_row(pair, page, api) for pair, page, api in measured),
            ("goal", f"p95 <= {PAGE_GOAL_MS:g} ms per page"),
        ],
    )
    figures: dict[str, float] = {"console_load_s": loaded, "console_verify_s": verified}
    for pair, page, _ in measured:
        figures[f"console_{pair.label.replace(' ', '_')}_p95_ms"] = percentile(page, 0.95)
    return figures
