"""Ingest: sales lines per second through the batch API, against two baselines.

The API side includes HTTP, JSON, validation, sealing, de-duplication and the
batch's audit entry. The first baseline is an ungoverned endpoint on the same
server (``bench.baseline_app``): HTTP, JSON and the same validation, then a
plaintext COPY into a bare table; their ratio is the cost of governance and of
a table that can be de-duplicated and read. The same endpoint COPYing into a
table with the hub table's keys (primary key, natural key, window index, the
shop's foreign key) tells the two apart. The second COPYs the
same rows, in plaintext, from this process with psycopg 3: the database's own
ceiling.
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx2 as httpx
import psycopg

from bench.baseline_app import PLAIN_TABLES
from bench.common import WORKERS, Size, hub_server, libpq, report, scratch_postgres
from bench.setup import BenchShop, make_shop, migrated_admin_key, post_sales, sales_lines

GOAL = 0.5
#: Shops sending at once, as many connectors do; each sends whole batches.
CONNECTORS = 4


def copy_baseline(database_url: str, records: list[dict[str, object]]) -> float:
    """COPY the same records, timed from the same parsed records the API starts from."""
    with psycopg.connect(libpq(database_url)) as connection:
        connection.execute(
            "CREATE TABLE bench_raw_sales (event_id text, occurred_at timestamptz, sku text, "
            "quantity int, unit_price_cents int, currency text)"
        )
        connection.commit()
        started = time.perf_counter()
        rows = [
            (
                r["event_id"],
                datetime.fromisoformat(str(r["occurred_at"])),
                r["sku"],
                r["quantity"],
                r["unit_price_cents"],
                r["currency"],
            )
            for r in records
        ]
        with connection.cursor() as cursor, cursor.copy("COPY bench_raw_sales FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        connection.commit()
        return len(rows) / (time.perf_counter() - started)


def run(size: Size) -> dict[str, float]:
    batch = size.pick(200, 5000)
    batches = size.pick(4, 40)
    records = sales_lines(batch * batches)
    bodies = [
        json.dumps({"records": records[i * batch : (i + 1) * batch]}).encode()
        for i in range(batches)
    ]
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as data_dir:
        admin_key = migrated_admin_key(url, Path(data_dir))
        with (
            hub_server(url, Path(data_dir)) as server,
            httpx.Client(base_url=server.base_url, timeout=120) as client,
        ):
            shops = [make_shop(client, admin_key) for _ in range(CONNECTORS)]
            # One warm-up batch each, so that no timed batch pays a cold start.
            warm = json.dumps({"records": sales_lines(batch, start=10**9)}).encode()
            for shop in shops:
                post_sales(client, shop, warm)

            def send(i: int) -> None:
                result = post_sales(client, shops[i % CONNECTORS], bodies[i])
                assert result["accepted"] == batch, result

            started = time.perf_counter()
            with ThreadPoolExecutor(CONNECTORS) as pool:
                list(pool.map(send, range(batches)))
            api_rate = len(records) / (time.perf_counter() - started)
            _make_plain_tables(url)
            plain_rate = _ungoverned(client, shops, bodies, batch, keyed=False)
            keyed_rate = _ungoverned(client, shops, bodies, batch, keyed=True)
        copy_rate = copy_baseline(url, records)
    ratio = api_rate / copy_rate
    governed = api_rate / plain_rate
    keyed = api_rate / keyed_rate
    report(
        f"ingest: {len(records)} sales lines in batches of {batch} from {CONNECTORS} "
        f"connectors at once, {WORKERS} server workers (PostgreSQL)",
        [
            ("batch API (validate, seal, dedupe, audit)", f"{api_rate:,.0f} rows/s"),
            ("baseline: ungoverned endpoint (validate, COPY)", f"{plain_rate:,.0f} rows/s"),
            ("ratio governed / ungoverned", f"{governed:.2f}  (goal >= {GOAL})"),
            ("baseline: ungoverned, into a table with the hub's keys", f"{keyed_rate:,.0f} rows/s"),
            ("ratio governed / ungoverned with the same keys", f"{keyed:.2f}"),
            ("baseline: raw COPY of the same rows", f"{copy_rate:,.0f} rows/s"),
            ("ratio governed / raw COPY", f"{ratio:.2f}"),
        ],
    )
    return {
        "ingest_rows_per_s": api_rate,
        "ungoverned_rows_per_s": plain_rate,
        "copy_rows_per_s": copy_rate,
        "ingest_ratio": ratio,
        "governed_ratio": governed,
        "governed_keyed_ratio": keyed,
    }


def _make_plain_tables(url: str) -> None:
    with psycopg.connect(libpq(url)) as connection:
        for statement in PLAIN_TABLES:
            connection.execute(statement)


def _ungoverned(
    client: httpx.Client, shops: list[BenchShop], bodies: list[bytes], batch: int, *, keyed: bool
) -> float:
    """The same batches, as many at once, through the ungoverned endpoint on the same server."""

    def send(i: int) -> None:
        response = client.post(
            f"/bench/raw/{shops[i % CONNECTORS].shop_id}/sales",
            params={"keyed": "true" if keyed else "false"},
            content=bodies[i],
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == batch, response.text

    started = time.perf_counter()
    with ThreadPoolExecutor(CONNECTORS) as pool:
        list(pool.map(send, range(len(bodies))))
    return batch * len(bodies) / (time.perf_counter() - started)
