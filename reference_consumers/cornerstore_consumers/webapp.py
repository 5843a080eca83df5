"""The HTTP face every consumer process shares: the webhook endpoint, health, its inbox.

A consumer adds routes of its own to these.
They listen on 127.0.0.1 in the reference: a real consumer puts its own
authentication in front of them, as it would of any internal API. The
webhook endpoint needs none: a delivery that does not verify is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from cornerstore_client import (
    CornerstoreError,
    ServerError,
    TooManyRequests,
    VerificationError,
)
from cornerstore_consumers.runtime import WEBHOOK_PATH, Handler, Runtime


def consumer_app(title: str, runtime: Runtime, handler: Handler) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(runtime.start, handler)
        try:
            yield
        finally:
            await run_in_threadpool(runtime.stop)
            handler.close()

    app = FastAPI(title=title, lifespan=lifespan)

    @app.exception_handler(CornerstoreError)
    async def hub_refused(_: Request, exc: CornerstoreError) -> JSONResponse:
        # The hub refused this consumer, not its caller: a bad gateway, or one
        # that is busy (503) when the hub said to come back later. The hub's
        # stable code and fields go along in the body.
        busy = isinstance(exc, TooManyRequests | ServerError)
        fields = [{"field": f.field, "reason": f.reason} for f in exc.fields]
        headers = {} if exc.retry_after is None else {"Retry-After": str(int(exc.retry_after))}
        return JSONResponse(
            {"error": "hub_refused", "hub_error": exc.code, "detail": exc.detail, "fields": fields},
            status_code=503 if busy else 502,
            headers=headers,
        )

    @app.post(WEBHOOK_PATH, status_code=204)
    async def webhook(request: Request) -> Response:
        body = await request.body()
        try:
            await run_in_threadpool(runtime.receive, request.headers, body)
        except VerificationError:
            # Standard Webhooks: a delivery that does not verify is not the hub's.
            return JSONResponse({"error": "signature did not verify"}, status_code=400)
        return Response(status_code=204)

    @app.post("/shops/{shop_id}/consent-request", status_code=201)
    def ask(shop_id: uuid.UUID) -> dict[str, Any]:
        """Ask the shop for consent on this consumer's terms; its work starts once approved."""
        return runtime.ask(str(shop_id)).model_dump(mode="json")

    @app.get("/shops/{shop_id}")
    def shop(shop_id: uuid.UUID) -> dict[str, Any]:
        """What this consumer holds of the shop."""
        return handler.shop(str(shop_id))

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Up, and its worker working: without it events only pile up."""
        if not runtime.working:
            return JSONResponse({"status": "the worker has stopped"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/inbox")
    def inbox() -> dict[str, Any]:
        """Events waiting, events given up on (an operator's to look at), and the latest."""
        return {
            "pending": runtime.inbox.pending(),
            "given_up": runtime.inbox.given_up(),
            "recent": runtime.inbox.recent(),
        }

    return app
