"""Read: governed read throughput against an ungoverned route of the same server.

Both page through the same shop's sales, 500 rows a page, from the same
server process and database. The governed side pays authentication, Casbin,
the consent check, minimisation and a committed audit entry per page.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

from bench.common import Size, hub_server, median, report, scratch_postgres
from bench.setup import make_shop, migrated_admin_key, post_sales, sales_lines

GOAL = 0.7
Route = tuple[str, dict[str, str], dict[str, str]]
PAGE = 500


def _page_through(
    client: httpx.Client, url: str, headers: dict[str, str], params: dict[str, str]
) -> int:
    rows, cursor = 0, None
    while True:
        query = dict(params, limit=str(PAGE), **({"cursor": cursor} if cursor else {}))
        response = client.get(url, params=query, headers=headers)
        response.raise_for_status()
        body = response.json()
        rows += len(body["records"])
        cursor = body["next"]
        if cursor is None:
            return rows


def run(size: Size) -> dict[str, float]:
    total = size.pick(1_000, 50_000)
    rounds = size.pick(1, 5)
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as data_dir:
        admin_key = migrated_admin_key(url, Path(data_dir))
        with (
            hub_server(url, Path(data_dir)) as server,
            httpx.Client(base_url=server.base_url, timeout=120) as client,
        ):
            shop = make_shop(client, admin_key)
            for start in range(0, total, 5000):
                body = json.dumps({"records": sales_lines(min(5000, total - start), start=start)})
                post_sales(client, shop, body.encode())
            governed: Route = (
                f"/v1/shops/{shop.shop_id}/sales",
                {"Authorization": f"Bearer {shop.consumer_key}"},
                {"purpose": "analytics"},
            )
            ungoverned: Route = (f"/bench/raw/{shop.shop_id}/sales", {}, {})
            rates: dict[str, list[float]] = {"governed": [], "ungoverned": []}
            # Alternate the two so that drift on the machine hits both alike.
            for _ in range(rounds + 1):
                for name, (path, headers, params) in (
                    ("governed", governed),
                    ("ungoverned", ungoverned),
                ):
                    started = time.perf_counter()
                    rows = _page_through(client, path, headers, params)
                    rates[name].append(rows / (time.perf_counter() - started))
                    assert rows == total, (name, rows, total)
    # The first round warms caches on both sides and is not counted.
    governed_rate = median(rates["governed"][1:])
    baseline_rate = median(rates["ungoverned"][1:])
    ratio = governed_rate / baseline_rate
    report(
        f"read: {total} sales lines, pages of {PAGE}, median of {rounds} rounds (PostgreSQL)",
        [
            ("governed (auth, Casbin, consent, minimise, audit)", f"{governed_rate:,.0f} rows/s"),
            ("baseline: ungoverned route, same rows", f"{baseline_rate:,.0f} rows/s"),
            ("ratio", f"{ratio:.2f}  (goal >= {GOAL})"),
        ],
    )
    return {
        "read_governed_rows_per_s": governed_rate,
        "read_baseline_rows_per_s": baseline_rate,
        "read_ratio": ratio,
    }
