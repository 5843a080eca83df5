"""How a consumer talks to the warehouse: its catalogue, placing an order once, its status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2 as httpx


class WarehouseRefused(Exception):
    """The warehouse would not take the order (not sold there, not whole cases, no stock)."""


@dataclass(frozen=True)
class Catalogue:
    #: How the warehouse is named to shopkeepers in a proposal.
    warehouse: str
    #: Every item it sells, by SKU.
    items: dict[str, dict[str, Any]]


class WarehouseClient:
    def __init__(self, base_url: str) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=10.0)

    def close(self) -> None:
        self._http.close()

    def catalogue(self) -> Catalogue:
        response = self._http.get("/catalogue")
        response.raise_for_status()
        body = response.json()
        return Catalogue(str(body["warehouse"]), {str(item["sku"]): item for item in body["items"]})

    def place(self, key: str, shop_ref: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
        """Place the order once: the same ``key`` again answers the order already placed."""
        response = self._http.post(
            "/orders",
            json={"shop_ref": shop_ref, "lines": lines},
            headers={"Idempotency-Key": key},
        )
        if response.status_code in (409, 422):
            raise WarehouseRefused(str(response.json().get("detail")))
        response.raise_for_status()
        placed: dict[str, Any] = response.json()
        return placed

    def order(self, order_id: str) -> dict[str, Any]:
        response = self._http.get(f"/orders/{order_id}")
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found
