"""The API application. It only assembles the domains' routers around an open :class:`Hub`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

import cornerstore
from analytics.rollups import builder as make_rollup_builder
from analytics.router import router as analytics_router
from audit.checkpoints import checkpointer as make_checkpointer
from audit.daily import counter as make_daily_counter
from audit.router import router as audit_router
from audit.transparency import router as transparency_router
from connectors.router import document_record_schemas
from connectors.router import router as ingestion_router
from consent.delivery import deliverer as make_deliverer
from consent.expiry import expiry_recorder
from consent.receipts_router import router as receipt_keys_router
from consent.router import router as consent_router
from consent.router import shop_router as consent_shop_router
from consent.webhooks_router import router as webhooks_router
from cornerstore import error_handlers, telemetry
from cornerstore.apidoc import declare_shared_errors
from cornerstore.middleware import BodySizeLimit, CatchAll
from cornerstore.reads import router as reads_router
from cornerstore.settings import get_settings
from hub.export.router import router as export_router
from hub.principals.router import consumers_router
from hub.principals.router import router as principals_router
from hub.runtime import Hub
from hub.shops.router import router as shops_router
from proposals.router import router as proposals_router
from web_console import site
from web_console.security import PageHeaders

DESCRIPTION = """
The shop owns its data. Consumers read it only under the shop's consent for a
named purpose, through one gate that checks, decrypts, minimises and audits
every read. Authenticate with `Authorization: Bearer <api key>`.

Every error has the same JSON shape: a stable `error` code, a human `detail`,
and for validation errors one entry per offending field in `fields`.
"""


#: Every domain's endpoints, in the order the API reference lists them.
ROUTERS = (
    principals_router,
    consumers_router,
    shops_router,
    ingestion_router,
    reads_router,
    consent_router,
    consent_shop_router,
    receipt_keys_router,
    webhooks_router,
    audit_router,
    transparency_router,
    export_router,
    analytics_router,
    proposals_router,
)


def create_app(hub: Hub, *, close_hub_on_shutdown: bool = False) -> FastAPI:
    checkpointer = make_checkpointer(
        hub.sessions, hub.signer, interval=hub.settings.checkpoint_interval_seconds
    )

    daily_counter = make_daily_counter(
        hub.sessions, interval=hub.settings.daily_count_interval_seconds
    )
    every = hub.settings.rollup_interval_seconds
    rollup_builder = (
        make_rollup_builder(hub.sessions, hub.keyring, interval=every) if every else None
    )
    deliverer = make_deliverer(hub.sessions, hub.settings)
    interval = hub.settings.expiry_record_interval_seconds
    expiries = expiry_recorder(hub, interval=interval) if interval else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        checkpointer.start()
        daily_counter.start()
        if rollup_builder:
            rollup_builder.start()
        deliverer.start()
        if expiries:
            expiries.start()
        yield
        if expiries:
            expiries.stop()
        deliverer.stop()
        if rollup_builder:
            rollup_builder.stop()
        daily_counter.stop()
        checkpointer.stop()
        if close_hub_on_shutdown:
            hub.close()

    app = FastAPI(
        title="Cornerstore",
        version=cornerstore.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by the web console from the hub's own copies, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.hub = hub
    error_handlers.install(app, error_page=site.error_page)
    # The last added runs first: CatchAll wraps everything, the body cap included.
    app.add_middleware(PageHeaders)
    app.add_middleware(BodySizeLimit, max_body_bytes=hub.settings.max_body_bytes)
    app.add_middleware(CatchAll)
    for router in ROUTERS:
        app.include_router(router)
    for router in site.ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=site.STATIC_DIR), name="static")

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "policy_version": hub.authorizer.policy_version}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            document_record_schemas(document)
            declare_shared_errors(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    telemetry.instrument(app, hub.engine, hub.settings)
    return app


def serve_app() -> FastAPI:
    """Factory for ``uvicorn --factory``: each worker opens its own hub from the settings."""
    return create_app(Hub.open(get_settings()), close_hub_on_shutdown=True)
