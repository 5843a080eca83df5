"""The hub app plus two ungoverned routes, for the read and ingest benchmarks only.

``GET /bench/raw/{shop_id}/sales`` returns the same rows as the governed
endpoint from the same server and database, decrypted, but with no
authentication, Casbin, consent, minimisation or audit.
``POST /bench/raw/{shop_id}/sales`` validates a batch with the same schema as
the governed endpoint and COPYs it in plaintext into ``bench_plain_sales``
(``?keyed=true``: into ``bench_keyed_sales``, which has the hub table's keys):
no authentication, Casbin, sealing, de-duplication, quarantine or audit.
They exist in this benchmark process and nowhere else.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from fastapi import FastAPI
from pydantic import TypeAdapter

from connectors.schemas import BatchIn
from cornerstore.categories import Category, SaleIn
from cornerstore.deps import CoreDep, DbSession
from cornerstore.reads import RecordsPage
from cornerstore.records import repository
from cornerstore.records.codec import VALUES_FIELD, decode_values
from cornerstore.records.cursor import decode_cursor, encode_cursor
from hub.app import serve_app


def create() -> FastAPI:
    app = serve_app()

    @app.get("/bench/raw/{shop_id}/sales", response_model=RecordsPage)
    def raw_sales(
        hub: CoreDep,
        session: DbSession,
        shop_id: uuid.UUID,
        limit: int = 500,
        cursor: str | None = None,
    ) -> RecordsPage:
        rows = repository.read_window(
            session,
            repository.Window(
                shop_id, Category.sales, None, None, decode_cursor(cursor), limit + 1
            ),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        cipher = hub.keyring.cipher(session, shop_id)
        records: list[dict[str, Any]] = [
            decode_values(
                Category.sales,
                occurred_at,
                cipher.open(Category.sales, VALUES_FIELD, bytes(key), bytes(sealed)),
            )
            for _id, occurred_at, key, sealed in rows
        ]
        return RecordsPage(
            records=records, next=encode_cursor(rows[-1][1], rows[-1][0]) if more else None
        )

    adapter = TypeAdapter(list[SaleIn])

    @app.post("/bench/raw/{shop_id}/sales")
    def raw_ingest(
        session: DbSession, shop_id: uuid.UUID, batch: BatchIn, keyed: bool = False
    ) -> dict[str, int]:
        records = adapter.validate_python(batch.records)
        driver = session.connection().connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        table = KEYED_TABLE_NAME if keyed else PLAIN_TABLE_NAME
        with driver.cursor() as cursor, cursor.copy(_copy_into(table)) as copy:
            for r in records:
                copy.write_row(
                    (shop_id, r.event_id, r.occurred_at, r.sku, r.quantity, r.unit_price_cents)
                )
        return {"accepted": len(records)}

    return app


PLAIN_TABLE_NAME = "bench_plain_sales"
KEYED_TABLE_NAME = "bench_keyed_sales"
_COLUMNS = "shop_id uuid, event_id text, occurred_at timestamptz, sku text, quantity int, "
_COLUMNS += "unit_price_cents int"
#: The tables the ungoverned ingest route writes (bench.ingest makes them): a
#: bare heap, as the issue's baseline; and one with the keys the hub's own
#: table needs to find duplicates and serve windows (primary key, natural key,
#: window index, the shop's foreign key), so that storage shape and governance
#: can be told apart.
PLAIN_TABLES = (
    f"CREATE TABLE {PLAIN_TABLE_NAME} ({_COLUMNS})",
    f"CREATE TABLE {KEYED_TABLE_NAME} (id bigserial PRIMARY KEY, {_COLUMNS}, "
    "FOREIGN KEY (shop_id) REFERENCES shops (id), UNIQUE (shop_id, event_id))",
    f"CREATE INDEX ON {KEYED_TABLE_NAME} (shop_id, occurred_at, id)",
)


def _copy_into(table: str) -> str:
    return (
        f"COPY {table} (shop_id, event_id, occurred_at, sku, quantity, unit_price_cents) FROM STDIN"
    )
