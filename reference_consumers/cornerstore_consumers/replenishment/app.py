"""The replenishment consumer as a process: ``cornerstore-consumers replenishment``."""

from __future__ import annotations

import uuid

from fastapi import FastAPI, HTTPException

from cornerstore_consumers.replenishment.orders import SCHEMA
from cornerstore_consumers.replenishment.service import TERMS, Replenisher
from cornerstore_consumers.runtime import ConsumerSettings, Runtime
from cornerstore_consumers.warehouse.client import WarehouseClient
from cornerstore_consumers.webapp import consumer_app


def create_app(settings: ConsumerSettings, warehouse_url: str) -> FastAPI:
    runtime = Runtime(settings, TERMS, SCHEMA)
    replenisher = Replenisher(runtime, WarehouseClient(warehouse_url))
    app = consumer_app("Replenishment consumer", runtime, replenisher)

    @app.post("/shops/{shop_id}/plan")
    def plan_again(shop_id: uuid.UUID) -> dict[str, str]:
        """Plan the shop's next order now (it is planned when the consent is approved)."""
        consent = runtime.live_consent(shop_id=str(shop_id))
        if consent is None:
            raise HTTPException(404, "no active replenishment consent from this shop")
        # A plan asked for now is a new one: its own key.
        return {"outcome": replenisher.recommend(consent, f"plan-{uuid.uuid4()}")}

    return app
