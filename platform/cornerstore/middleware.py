"""Pure ASGI middleware around the whole app: a cap on request bodies, and a last
line that turns any unhandled exception into a bare 500.

Starlette's ``ServerErrorMiddleware`` calls the app's 500 handler and then
re-raises, so the server logs the traceback and the request span records the
exception's message. An exception message can hold shop data, so
:class:`CatchAll` ends the exception inside the app: it logs the type name only
and nothing reaches the server or the tracing middleware outside it.
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cornerstore.errors import CornerstoreError, PayloadTooLarge

_log = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body grows past the limit.

    An HTTPException, because FastAPI turns any other error raised while it
    reads a body into a 400; this one its handler answers with the 413.
    ``Connection: close`` lets the server drop the rest of the body instead of
    reading it to the end for the next request on the connection.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"the request body is larger than {limit} bytes",
            headers={"Connection": "close"},
        )

    def response(self) -> JSONResponse:
        body = PayloadTooLarge(self.detail).body()
        return JSONResponse(body.model_dump(mode="json"), self.status_code, self.headers)


class _Tracked:
    """A ``send`` that remembers whether the response has started."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class BodySizeLimit:
    """Refuse request bodies over ``max_body_bytes`` with a 413, before they are read whole."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await BodyTooLarge(limit).response()(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            # Chunked bodies declare no length: count what arrives.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        tracked = _Tracked(send)
        try:
            await self.app(scope, counting_receive, tracked)
        except BodyTooLarge as exc:
            # The app's handler answers a body read in a route; this is for one read elsewhere.
            if not tracked.started:
                await exc.response()(scope, receive, send)


class CatchAll:
    """Answer any exception the app lets out with a 500 that says nothing, and end it here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = _Tracked(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            # The message and traceback can hold shop data: the type name only.
            _log.error("unhandled error: %s", type(exc).__name__)
            if not tracked.started:
                body = CornerstoreError().body().model_dump(mode="json")
                await JSONResponse(body, status_code=500)(scope, receive, send)
