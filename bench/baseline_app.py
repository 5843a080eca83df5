"""The hub app plus one ungoverned route, for the read benchmark only.

``GET /bench/raw/{shop_id}/sales`` returns the same rows as the governed
endpoint from the same server and database, decrypted, but with no
authentication, Casbin, consent, minimisation or audit. It exists in this
benchmark process and nowhere else.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI

from cornerstore.categories import Category
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

    return app
