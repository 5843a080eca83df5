"""The warehouse's HTTP API: its catalogue, and orders placed once per ``Idempotency-Key``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Response
from pydantic import BaseModel, Field

from cornerstore_consumers.warehouse.store import Item, OrderConflict, OrderRefused, Warehouse

#: The demo hub's SKUs (hub/demo_data.py), with this warehouse's case packs and lead times.
DEMO_CATALOGUE = "demo_catalogue.json"


def load_catalogue(path: Path | None = None) -> tuple[str, list[Item]]:
    """The warehouse's name and items from a JSON catalogue (the demo's when None)."""
    if path is None:
        text = resources.files(__package__).joinpath(DEMO_CATALOGUE).read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    body = json.loads(text)
    return str(body["warehouse"]), [Item(**item) for item in body["items"]]


class LineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=200)
    quantity: int = Field(gt=0, le=1_000_000)


class OrderIn(BaseModel):
    #: Who ordered, as the shop is known to the warehouse (its hub shop id).
    shop_ref: str = Field(min_length=1, max_length=200)
    lines: list[LineIn] = Field(min_length=1, max_length=500)


def create_app(
    path: str | Path, *, name: str = "Reference warehouse", stock: list[Item] | None = None
) -> FastAPI:
    """The warehouse on its database at ``path``, first stocked with ``stock`` if given."""
    warehouse = Warehouse(path)
    if stock:
        warehouse.stock(stock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            warehouse.close()

    app = FastAPI(title=name, lifespan=lifespan)
    app.state.warehouse = warehouse

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/catalogue")
    def catalogue() -> dict[str, Any]:
        """The warehouse's name, and each item with its case pack, lead time and stock."""
        return {"warehouse": name, "items": [item.__dict__ for item in warehouse.items()]}

    @app.post("/orders", status_code=201)
    def place(
        order: OrderIn,
        response: Response,
        idempotency_key: Annotated[str, Header(min_length=8, max_length=200)],
    ) -> dict[str, Any]:
        lines = [line.model_dump() for line in order.lines]
        try:
            placed, new = warehouse.place(idempotency_key, order.shop_ref, lines)
        except OrderConflict as exc:
            raise HTTPException(409, str(exc)) from None
        except OrderRefused as exc:
            raise HTTPException(422, str(exc)) from None
        if not new:
            response.status_code = 200
        return placed

    @app.get("/orders/{order_id}")
    def status(order_id: str) -> dict[str, Any]:
        found = warehouse.order(order_id)
        if found is None:
            raise HTTPException(404, "no such order")
        return found

    @app.post("/orders/{order_id}/deliver")
    def deliver(order_id: str) -> dict[str, Any]:
        found = warehouse.deliver(order_id)
        if found is None:
            raise HTTPException(404, "no such order")
        return found

    return app
