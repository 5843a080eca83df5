"""Consent: the purpose catalogue, requests, grants and changes, receipts and history.

Endpoints authorize through Casbin (:func:`cornerstore.access.authorize`) and
leave every rule of the lifecycle to :mod:`consent.service`.
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

from consent import service
from consent.deps import ConsentCore, ConsentCoreDep
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
from cornerstore.access import Permit, authorize
from cornerstore.db import hold_snapshot
from cornerstore.deps import CurrentCaller, DbSession
from cornerstore.errors import GLOBAL_ERRORS, SHOP_ERRORS, Conflict, NotFound, error_responses
from cornerstore.identity import Caller
from cornerstore.models.shops import Shop
from cornerstore.ports import Core

router = APIRouter(tags=["consent"])
shop_router = APIRouter(prefix="/v1/shops/{shop_id}", tags=["consent"], responses=SHOP_ERRORS)

CHANGE_ERRORS = error_responses(Conflict)


def _context(hub: ConsentCore, caller: Caller, permit: Permit) -> service.Context:
    return service.context(hub, caller, permit.policy_version)


@router.get("/v1/purposes", response_model=PurposesOut, summary="The purpose catalogue")
def list_purposes(hub: ConsentCoreDep) -> PurposesOut:
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
            for p in hub.authorizer.purposes.values()
        ]
    )


@shop_router.get("/consents", response_model=ConsentsOut, summary="List the shop's consents")
def list_consents(
    hub: ConsentCoreDep, session: DbSession, caller: CurrentCaller, shop_id: uuid.UUID
) -> ConsentsOut:
    authorize(hub, session, caller, resource="consent", action="read", shop_id=shop_id)
    return ConsentsOut(consents=service.list_for_shop(session, shop_id))


@shop_router.post(
    "/consents",
    response_model=ConsentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Grant a consumer consent directly (active at once)",
)
def grant_consent(
    hub: ConsentCoreDep,
    session: DbSession,
    caller: CurrentCaller,
    shop_id: uuid.UUID,
    body: ConsentIn,
) -> ConsentOut:
    permit = authorize(hub, session, caller, resource="consent", action="write", shop_id=shop_id)
    return service.grant(session, _context(hub, caller, permit), shop_id, body)


@shop_router.post(
    "/consent-requests",
    response_model=ConsentOut,
    status_code=status.HTTP_201_CREATED,
    summary="A consumer asks the shop for consent; it waits for the shopkeeper",
)
def request_consent(
    hub: ConsentCoreDep,
    session: DbSession,
    caller: CurrentCaller,
    shop_id: uuid.UUID,
    body: ConsentRequestIn,
) -> ConsentOut:
    permit = authorize(
        hub, session, caller, resource="consent-request", action="create", shop_id=shop_id
    )
    if session.get(Shop, shop_id) is None:
        raise NotFound()
    return service.request(session, _context(hub, caller, permit), shop_id, body)


@shop_router.post(
    "/consent-requests/{request_id}/approve",
    response_model=ConsentOut,
    responses=CHANGE_ERRORS,
    summary="Approve a request as asked, or narrowed",
)
def approve_request(
    hub: ConsentCoreDep,
    session: DbSession,
    caller: CurrentCaller,
    shop_id: uuid.UUID,
    request_id: uuid.UUID,
    body: Annotated[NarrowingIn | None, Body()] = None,
) -> ConsentOut:
    permit = authorize(hub, session, caller, resource="consent", action="write", shop_id=shop_id)
    return service.approve(session, _context(hub, caller, permit), shop_id, request_id, body)


@shop_router.post(
    "/consent-requests/{request_id}/refuse",
    response_model=ConsentOut,
    responses=CHANGE_ERRORS,
    summary="Refuse a request",
)
def refuse_request(
    hub: ConsentCoreDep,
    session: DbSession,
    caller: CurrentCaller,
    shop_id: uuid.UUID,
    request_id: uuid.UUID,
) -> ConsentOut:
    permit = authorize(hub, session, caller, resource="consent", action="write", shop_id=shop_id)
    return service.refuse(session, _context(hub, caller, permit), shop_id, request_id)


def _change_route(name: str, summary: str) -> None:
    change = getattr(service, name)

    def endpoint(
        hub: ConsentCoreDep,
        session: DbSession,
        caller: CurrentCaller,
        shop_id: uuid.UUID,
        consent_id: uuid.UUID,
    ) -> ConsentOut:
        permit = authorize(
            hub, session, caller, resource="consent", action="write", shop_id=shop_id
        )
        out: ConsentOut = change(session, _context(hub, caller, permit), shop_id, consent_id)
        return out

    shop_router.add_api_route(
        f"/consents/{{consent_id}}/{name}",
        endpoint,
        methods=["POST"],
        response_model=ConsentOut,
        responses=CHANGE_ERRORS,
        name=f"{name}_consent",
        summary=summary,
    )


_change_route("pause", "Pause a consent; reads stop until it is resumed")
_change_route("resume", "Resume a paused consent")
_change_route("revoke", "Revoke a consent; the very next read under it is refused")


def _sharing_route(name: str, summary: str) -> None:
    change = getattr(service, name.replace("-", "_"))

    def endpoint(
        hub: ConsentCoreDep, session: DbSession, caller: CurrentCaller, shop_id: uuid.UUID
    ) -> ConsentsOut:
        permit = authorize(
            hub, session, caller, resource="consent", action="write", shop_id=shop_id
        )
        return ConsentsOut(consents=change(session, _context(hub, caller, permit), shop_id))

    shop_router.add_api_route(
        f"/{name}",
        endpoint,
        methods=["POST"],
        response_model=ConsentsOut,
        name=name.replace("-", "_"),
        summary=summary,
    )


_sharing_route("pause-sharing", "Pause every active consent of the shop at once")
_sharing_route("resume-sharing", "Resume the consents pause-sharing paused (and no other)")


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
    hub: ConsentCoreDep,
    session: DbSession,
    caller: CurrentCaller,
    shop_id: uuid.UUID,
    consent_id: uuid.UUID,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> PlainTextResponse:
    authorize(hub, session, caller, resource="consent-receipt", action="read", shop_id=shop_id)
    jws = service.receipt(session, caller, shop_id, consent_id, version)
    return PlainTextResponse(jws, media_type="application/jose")


@router.get(
    "/v1/consumers/me/consents",
    response_model=ConsentsOut,
    responses=GLOBAL_ERRORS,
    summary="The calling consumer's consents and requests, in every shop",
)
def my_consents(hub: ConsentCoreDep, session: DbSession, caller: CurrentCaller) -> ConsentsOut:
    authorize(hub, session, caller, resource="consent", action="list")
    return ConsentsOut(consents=service.list_for_consumer(session, caller.id))


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
            versions = service.history(session, shop_id=shop_id)
            yield from _csv(versions) if fmt is HistoryFormat.csv else _json(versions)

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
    hub: ConsentCoreDep,
    session: DbSession,
    caller: CurrentCaller,
    shop_id: uuid.UUID,
    format: Annotated[HistoryFormat, Query()] = HistoryFormat.json,
) -> StreamingResponse:
    authorize(hub, session, caller, resource="consent-history", action="read", shop_id=shop_id)
    return _history_response(hub, shop_id, format, f"consent-history-{shop_id}")


@router.get(
    "/v1/consent-history",
    response_model=ConsentHistoryOut,
    responses={**_HISTORY_DOC, **GLOBAL_ERRORS},
    summary="Every consent change in the hub, for auditors",
)
def consent_history(
    hub: ConsentCoreDep,
    session: DbSession,
    caller: CurrentCaller,
    format: Annotated[HistoryFormat, Query()] = HistoryFormat.json,
) -> StreamingResponse:
    authorize(hub, session, caller, resource="consent-history", action="read")
    return _history_response(hub, None, format, "consent-history")


router.include_router(shop_router)
