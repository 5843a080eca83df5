"""``GET /v1/shops/{shop_id}/export``: everything Cornerstore holds about a shop, as a zip."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from audit import service as audit
from consent import service as consents
from cornerstore.access import AuthorizeShop, Permit
from cornerstore.authz import Action, Resource
from cornerstore.categories import CATEGORIES, Category
from cornerstore.db import hold_snapshot, utcnow
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import SHOP_ERRORS
from cornerstore.gate import AccessGate, ShopExport
from cornerstore.ports import Core
from cornerstore.records.codec import format_time
from hub.export.archive import DataSet, stream_zip

router = APIRouter(tags=["shopkeeper"])

ShopExportPermit = Annotated[Permit, Depends(AuthorizeShop(Resource.shop, Action.export))]
_log = logging.getLogger(__name__)

CONSENT_COLUMNS = (
    "id",
    "consumer_id",
    "purpose",
    "categories",
    "status",
    "granted_at",
    "expires_at",
    "revoked_at",
)
ACCESS_LOG_COLUMNS = (
    "seq",
    "recorded_at",
    "action",
    "decision",
    "reason",
    "principal_id",
    "principal_role",
    "category",
    "purpose",
    "policy_version",
    "details",
)
QUARANTINE_COLUMNS = (
    "category",
    "batch_id",
    "position",
    "field",
    "reason",
    "received_at",
    "record",
)


@router.get(
    "/v1/shops/{shop_id}/export",
    response_class=StreamingResponse,
    summary="Download everything Cornerstore holds about the shop",
    description=(
        "For the shop's shopkeeper. A zip with the shop's sales, inventory, payments, "
        "quarantined records, consents and access log, each as CSV and as JSON Lines, and "
        "`manifest.json` with every file's row count and SHA-256. It is streamed, so any size "
        "of shop exports in bounded memory; an archive without its manifest is incomplete."
    ),
    responses={
        **SHOP_ERRORS,
        200: {"content": {"application/zip": {}}, "description": "The export, as a zip"},
    },
)
def export_shop(
    permit: ShopExportPermit, shop_id: uuid.UUID, core: CoreDep, session: DbSession
) -> StreamingResponse:
    export = AccessGate(core).export(session, permit)
    return StreamingResponse(
        _stream(core, export),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="cornerstore-shop-{shop_id}.zip"'},
    )


def _stream(hub: Core, export: ShopExport) -> Iterator[bytes]:
    # Its own session: the request's is closed once the response starts. One
    # snapshot for the whole archive, so its files agree with each other.
    with hub.sessions() as session:
        hold_snapshot(session)
        now = utcnow()
        header = {"shop_id": str(export.shop_id), "exported_at": format_time(now)}
        try:
            yield from stream_zip(_data_sets(session, export, now), header)
        except Exception as exc:
            # Re-raised so that the server drops the connection: the client sees
            # a failed download, never a truncated archive that looks complete.
            _log.error("export of shop %s stopped: %s", export.shop_id, type(exc).__name__)
            raise


def _data_sets(session: Session, export: ShopExport, now: datetime) -> list[DataSet]:
    def records(category: Category) -> DataSet:
        return DataSet(
            category.value, CATEGORIES[category].fields, lambda: export.records(session, category)
        )

    return [
        *(records(category) for category in Category),
        DataSet("quarantine", QUARANTINE_COLUMNS, lambda: export.quarantined(session)),
        DataSet(
            "consents",
            CONSENT_COLUMNS,
            lambda: (c.model_dump() for c in consents.list_for_shop(session, export.shop_id, now)),
        ),
        DataSet("access-log", ACCESS_LOG_COLUMNS, lambda: _access_log(session, export.shop_id)),
    ]


def _access_log(session: Session, shop_id: uuid.UUID, page: int = 1000) -> Iterator[dict[str, Any]]:
    where, after = audit.AuditFilter(shop_id=shop_id), 0
    while True:
        entries = audit.query(session, where, after_seq=after, limit=page)
        for entry in entries:
            yield {column: getattr(entry, column) for column in ACCESS_LOG_COLUMNS}
        if len(entries) < page:
            return
        after = entries[-1].seq
