"""The warehouse's HTTP API: its catalogue, and orders placed once per ``Idempotency-Key``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Response
from pydantic import BaseModel, Field

from cornerstore_consumers.warehouse.store import OrderConflict, OrderRefused, Warehouse


class LineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=200)
    quantity: int = Field(gt=0, le=1_000_000)


class OrderIn(BaseModel):
    #: Who ordered, as the shop is known to the warehouse (its hub shop id).
    shop_ref: str = Field(min_length=1, max_length=200)
    lines: list[LineIn] = Field(min_length=1, max_length=500)


def create_app(path: str | Path) -> FastAPI:
    warehouse = Warehouse(path)
    app = FastAPI(title="Reference warehouse")
    app.state.warehouse = warehouse

    @app.get("/catalogue")
    def catalogue() -> dict[str, Any]:
        return {"items": [item.__dict__ for item in warehouse.items()]}

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
