"""Consent: the purpose catalogue, requests, grants and changes, receipts and history.

Each endpoint declares its permit in its signature (:mod:`cornerstore.access`)
and leaves every rule of the lifecycle to :mod:`consent.service`.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status
from fastapi.responses import PlainTextResponse, StreamingResponse

from consent import service, versions
from consent.deps import ConsentCoreDep
from consent.permits import (
    ConsentList,
    ConsentRead,
    ConsentRequestCreate,
    ConsentWrite,
    HistoryRead,
    ReceiptRead,
    ShopHistoryRead,
    change_context,
)
from consent.schemas import (
    ConsentHistoryOut,
    ConsentIn,
    ConsentOut,
    ConsentRequestIn,
    ConsentsOut,
    ConsentVersionOut,
    NarrowingIn,
    PurposeOut,
    PurposesOut,
)
from cornerstore.csvcells import neutralise
from cornerstore.db import hold_snapshot, utcnow
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import GLOBAL_ERRORS, SHOP_ERRORS, Conflict, NotFound, error_responses
from cornerstore.models.consent import ConsentStatus
from cornerstore.models.shops import Shop
from cornerstore.ports import Core
from cornerstore.ratelimit import DAY

router = APIRouter(tags=["consent"])
shop_router = APIRouter(prefix="/v1/shops/{shop_id}", tags=["consent"], responses=SHOP_ERRORS)

CHANGE_ERRORS = error_responses(Conflict)


@router.get("/v1/purposes", response_model=PurposesOut, summary="The purpose catalogue")
def list_purposes(core: CoreDep) -> PurposesOut:
    """Public: what each purpose is, in English and Chinese, what it may see and its limits."""
    return PurposesOut(
        purposes=[
            PurposeOut(
                code=p.code,
                name=dict(p.title),
                description=dict(p.description),
                dpv=p.dpv,
                fields={c: list(f) for c, f in p.fields.items()},
                max_data_range=p.max_data_range,
                max_validity=p.max_validity,
                max_data_life=p.max_data_life,
            )
            for p in core.authorizer.purposes.values()
        ]
    )


@shop_router.get("/consents", response_model=ConsentsOut, summary="List the shop's consents")
def list_consents(
    permit: ConsentRead,
    shop_id: uuid.UUID,
    session: DbSession,
    status: Annotated[
        ConsentStatus | None, Query(description="Only the consents with this status now")
    ] = None,
) -> ConsentsOut:
    return ConsentsOut(consents=service.list_for_shop(session, shop_id, utcnow(), status))


@shop_router.post(
    "/consents",
    response_model=ConsentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Grant a consumer consent directly (active at once)",
)
def grant_consent(
    permit: ConsentWrite,
    shop_id: uuid.UUID,
    body: ConsentIn,
    core: ConsentCoreDep,
    session: DbSession,
) -> ConsentOut:
    return service.grant(session, change_context(core, permit), shop_id, body)


@shop_router.post(
    "/consent-requests",
    response_model=ConsentOut,
    status_code=status.HTTP_201_CREATED,
    summary="A consumer asks the shop for consent; it waits for the shopkeeper",
)
def request_consent(
    permit: ConsentRequestCreate,
    shop_id: uuid.UUID,
    body: ConsentRequestIn,
    core: ConsentCoreDep,
    session: DbSession,
) -> ConsentOut:
    if session.get(Shop, shop_id) is None:
        raise NotFound()
    # Each request makes a receipt, an audit entry and an event for the shop
    # to read: a consumer may not flood a shopkeeper with them. Counted before
    # the request writes anything: on SQLite the count's own connection could
    # not write while the request holds the database's write lock.
    core.rate_limiter.hit(
        f"consent-requests:{permit.caller.id}:{shop_id}",
        core.settings.rate_consent_requests_per_day,
        DAY,
        utcnow(),
    )
    return service.request(session, change_context(core, permit), shop_id, body)


@shop_router.post(
    "/consent-requests/{request_id}/approve",
    response_model=ConsentOut,
    responses=CHANGE_ERRORS,
    summary="Approve a request as asked, or narrowed",
)
def approve_request(
    permit: ConsentWrite,
    shop_id: uuid.UUID,
    request_id: uuid.UUID,
    core: ConsentCoreDep,
    session: DbSession,
    body: Annotated[NarrowingIn | None, Body()] = None,
) -> ConsentOut:
    return service.approve(session, change_context(core, permit), shop_id, request_id, body)


@shop_router.post(
    "/consent-requests/{request_id}/refuse",
    response_model=ConsentOut,
    responses=CHANGE_ERRORS,
    summary="Refuse a request",
)
def refuse_request(
    permit: ConsentWrite,
    shop_id: uuid.UUID,
    request_id: uuid.UUID,
    core: ConsentCoreDep,
    session: DbSession,
) -> ConsentOut:
    return service.refuse(session, change_context(core, permit), shop_id, request_id)


@shop_router.post(
    "/consents/{consent_id}/pause",
    response_model=ConsentOut,
    responses=CHANGE_ERRORS,
    summary="Pause a consent; reads stop until it is resumed",
)
def pause_consent(
    permit: ConsentWrite,
    shop_id: uuid.UUID,
    consent_id: uuid.UUID,
    core: ConsentCoreDep,
    session: DbSession,
) -> ConsentOut:
    return service.pause(session, change_context(core, permit), shop_id, consent_id)


@shop_router.post(
    "/consents/{consent_id}/resume",
    response_model=ConsentOut,
    responses=CHANGE_ERRORS,
    summary="Resume a paused consent",
)
def resume_consent(
    permit: ConsentWrite,
    shop_id: uuid.UUID,
    consent_id: uuid.UUID,
    core: ConsentCoreDep,
    session: DbSession,
) -> ConsentOut:
    return service.resume(session, change_context(core, permit), shop_id, consent_id)


@shop_router.post(
    "/consents/{consent_id}/revoke",
    response_model=ConsentOut,
    responses=CHANGE_ERRORS,
    summary="Revoke a consent; the very next read under it is refused",
)
def revoke_consent(
    permit: ConsentWrite,
    shop_id: uuid.UUID,
    consent_id: uuid.UUID,
    core: ConsentCoreDep,
    session: DbSession,
) -> ConsentOut:
    return service.revoke(session, change_context(core, permit), shop_id, consent_id)


@shop_router.post(
    "/pause-sharing",
    response_model=ConsentsOut,
    summary="Pause every active consent of the shop at once",
)
def pause_sharing(
    permit: ConsentWrite, shop_id: uuid.UUID, core: ConsentCoreDep, session: DbSession
) -> ConsentsOut:
    return ConsentsOut(
        consents=service.pause_sharing(session, change_context(core, permit), shop_id)
    )


@shop_router.post(
    "/resume-sharing",
    response_model=ConsentsOut,
    summary="Resume the consents pause-sharing paused (and no other)",
)
def resume_sharing(
    permit: ConsentWrite, shop_id: uuid.UUID, core: ConsentCoreDep, session: DbSession
) -> ConsentsOut:
    return ConsentsOut(
        consents=service.resume_sharing(session, change_context(core, permit), shop_id)
    )


@shop_router.get(
    "/consents/{consent_id}/receipt",
    # Errors stay JSON like everywhere else; only the receipt itself is a JWS.
    responses={
        200: {
            "content": {"application/jose": {"schema": {"type": "string"}}},
            "description": "The receipt: JWS compact serialisation",
        }
    },
    summary="A consent version's signed receipt (JWS compact), the newest by default",
)
def consent_receipt(
    permit: ReceiptRead,
    shop_id: uuid.UUID,
    consent_id: uuid.UUID,
    session: DbSession,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> PlainTextResponse:
    jws = versions.receipt(session, permit.caller, shop_id, consent_id, version)
    return PlainTextResponse(jws, media_type="application/jose")


@router.get(
    "/v1/consumers/me/consents",
    response_model=ConsentsOut,
    responses=GLOBAL_ERRORS,
    summary="The calling consumer's consents and requests, in every shop",
)
def my_consents(permit: ConsentList, session: DbSession) -> ConsentsOut:
    return ConsentsOut(consents=service.list_for_consumer(session, permit.caller.id, utcnow()))


class HistoryFormat(StrEnum):
    json = "json"
    csv = "csv"


_CSV_COLUMNS = (
    "consent_id",
    "version",
    "shop_id",
    "consumer_id",
    "purpose",
    "status",
    "change",
    "changed_by",
    "changed_by_role",
    "changed_at",
    "categories",
    "access_mode",
    "data_range",
    "max_reads_per_day",
    "valid_from",
    "valid_until",
    "data_life",
    "receipt",
)


def _csv(versions: Iterator[ConsentVersionOut]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    for v in versions:
        doc = v.artefact
        purpose = doc.get("purpose")
        writer.writerow(
            [
                neutralise(cell)
                for cell in (
                    v.consent_id,
                    v.version,
                    doc.get("shop_id"),
                    doc.get("consumer_id"),
                    purpose.get("code") if isinstance(purpose, dict) else purpose,
                    v.status,
                    v.change,
                    v.changed_by,
                    v.changed_by_role,
                    doc.get("changed_at") or v.changed_at.isoformat(),
                    " ".join(doc.get("categories", [])),
                    doc.get("access_mode"),
                    json.dumps(doc.get("data_range"), separators=(",", ":")),
                    doc.get("max_reads_per_day"),
                    doc.get("valid_from"),
                    doc.get("valid_until"),
                    doc.get("data_life"),
                    v.receipt or "",
                )
            ]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _json(versions: Iterator[ConsentVersionOut]) -> Iterator[str]:
    """The same document as ``ConsentHistoryOut``, written a version at a time."""
    yield '{"versions":['
    for n, version in enumerate(versions):
        yield ("," if n else "") + version.model_dump_json()
    yield "]}"


def _history_response(
    hub: Core, shop_id: uuid.UUID | None, fmt: HistoryFormat, name: str
) -> StreamingResponse:
    """Streamed from a session of its own (the request's closes when the response starts),
    from one snapshot, so memory stays flat however long the history is."""

    def stream() -> Iterator[str]:
        with hub.sessions() as session:
            hold_snapshot(session)
            changes = versions.history(session, shop_id=shop_id)
            yield from _csv(changes) if fmt is HistoryFormat.csv else _json(changes)

    if fmt is HistoryFormat.csv:
        return StreamingResponse(
            stream(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return StreamingResponse(stream(), media_type="application/json")


_HISTORY_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {}},
        "description": "Every version, oldest first (JSON, or CSV with format=csv)",
    }
}


@shop_router.get(
    "/consent-history",
    response_model=ConsentHistoryOut,
    responses=_HISTORY_DOC,
    summary="Who changed which consent of the shop, when, and to what",
)
def shop_consent_history(
    permit: ShopHistoryRead,
    shop_id: uuid.UUID,
    core: CoreDep,
    format: Annotated[HistoryFormat, Query()] = HistoryFormat.json,
) -> StreamingResponse:
    return _history_response(core, shop_id, format, f"consent-history-{shop_id}")


@router.get(
    "/v1/consent-history",
    response_model=ConsentHistoryOut,
    responses={**_HISTORY_DOC, **GLOBAL_ERRORS},
    summary="Every consent change in the hub, for auditors",
)
def consent_history(
    permit: HistoryRead,
    core: CoreDep,
    format: Annotated[HistoryFormat, Query()] = HistoryFormat.json,
) -> StreamingResponse:
    return _history_response(core, None, format, "consent-history")
