"""``POST /v1/shops/{shop_id}/sales`` (likewise ``/inventory``, ``/payments``, and CSV)."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from fastapi import Path as FastApiPath
from pydantic.json_schema import models_json_schema
from starlette.datastructures import UploadFile

from connectors import csv_text, pos_csv, quarantine, service
from connectors.profiles import GENERIC, profiles
from connectors.schemas import BatchIn, BatchResult, CatalogueIn, QuarantineOut
from cornerstore.access import AuthorizeShop, Permit
from cornerstore.authz import Action, Resource
from cornerstore.categories import CATEGORIES, Category
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import (
    SHOP_ERRORS,
    FieldError,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
    error_responses,
)
from cornerstore.models.shops import Shop

INGEST_ERRORS = SHOP_ERRORS | error_responses(PayloadTooLarge)
router = APIRouter(prefix="/v1/shops/{shop_id}", tags=["ingestion"], responses=INGEST_ERRORS)

SalesWrite = Annotated[Permit, Depends(AuthorizeShop(Category.sales, Action.write))]
InventoryWrite = Annotated[Permit, Depends(AuthorizeShop(Category.inventory, Action.write))]
PaymentsWrite = Annotated[Permit, Depends(AuthorizeShop(Category.payments, Action.write))]
CatalogueWrite = Annotated[Permit, Depends(AuthorizeShop(Category.catalogue, Action.write))]


def _ingest(core: CoreDep, session: DbSession, permit: Permit, records: list[Any]) -> BatchResult:
    _check_size(core, len(records))
    cipher = core.keyring.cipher(session, permit.shop)
    store = service.replace if CATEGORIES[permit.category].replaced else service.ingest
    return store(
        session,
        cipher,
        permit.caller,
        permit.category,
        records,
        policy_version=permit.policy_version,
    )


def _ingest_csv(
    core: CoreDep,
    session: DbSession,
    permit: Permit,
    body: bytes,
    encoding: csv_text.Encoding | None,
) -> BatchResult:
    spec = CATEGORIES[permit.category]
    shop = session.get(Shop, permit.shop)
    zone = ZoneInfo(shop.time_zone) if shop is not None and shop.time_zone else ZoneInfo("UTC")
    profile = profiles().get(shop.pos_profile or GENERIC) if shop is not None else None
    parsed = pos_csv.parse(
        body,
        spec.schema,
        time_field=spec.time_field,
        zone=zone,
        encoding=encoding,
        layout=None if profile is None else profile.layout(permit.category.value),
        time_set_by_hub=spec.replaced,
    )
    _check_size(core, len(parsed.records))
    cipher = core.keyring.cipher(session, permit.shop)
    store = service.replace if spec.replaced else service.ingest
    return store(
        session,
        cipher,
        permit.caller,
        permit.category,
        parsed.records,
        policy_version=permit.policy_version,
        unreadable=parsed.unreadable,
        lines=parsed.lines,
    )


def _check_size(core: CoreDep, count: int) -> None:
    if count > core.settings.ingest_max_records:
        raise PayloadTooLarge(
            f"a batch holds at most {core.settings.ingest_max_records} records; "
            f"this one holds {count}: split it"
        )


async def _csv_body(request: Request) -> bytes:
    """The export: the raw body, or the ``file`` of a multipart upload (``curl -F file=@…``)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await request.body()
    form = await request.form(max_files=1, max_fields=10)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        reason = "a multipart upload carries the CSV file as its `file` field"
        raise ValidationFailed(reason, [FieldError(field="body.file", reason="required")])
    return await upload.read()


CsvBody = Annotated[bytes, Depends(_csv_body)]
CsvEncoding = Annotated[
    csv_text.Encoding | None,
    Query(
        description="The export's encoding, when it cannot be told from the bytes "
        "(UTF-8 with or without a byte-order mark, GBK/GB18030 and UTF-16 can)"
    ),
]


BATCH_DESCRIPTION = (
    "Each record is validated on its own: good records are stored, bad ones are "
    "kept in quarantine and listed under `rejected` with their index, field and "
    "reason. Records already stored (same `event_id`, or for inventory the same "
    "SKU and count time) are counted under `duplicates` and not stored again."
)
CSV_DESCRIPTION = (
    "The body is a POS export (`text/csv`, or a multipart upload's `file`): a header "
    "line, then one record a line, comma- or tab-separated, in UTF-8, GBK/GB18030 or "
    "UTF-16 (told from the bytes, or named with `encoding`). The header names the record "
    "fields, or the columns of the shop's `pos_profile` (`PATCH /v1/shops/{id}`). "
    "A time without an offset (`2026-11-28 10:05:00`) is read in the shop's time zone "
    "(UTC if it has none); one the clocks skipped or showed twice is refused. Records "
    "are handled as in the JSON batch, and each rejection also names its `line` in "
    "the file and every fault of the record under `errors`."
)
CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}


@router.post("/sales", summary="Send a batch of sales records", description=BATCH_DESCRIPTION)
def ingest_sales(
    permit: SalesWrite, batch: BatchIn, core: CoreDep, session: DbSession
) -> BatchResult:
    return _ingest(core, session, permit, batch.records)


@router.post(
    "/inventory", summary="Send a batch of inventory records", description=BATCH_DESCRIPTION
)
def ingest_inventory(
    permit: InventoryWrite, batch: BatchIn, core: CoreDep, session: DbSession
) -> BatchResult:
    return _ingest(core, session, permit, batch.records)


@router.post("/payments", summary="Send a batch of payments records", description=BATCH_DESCRIPTION)
def ingest_payments(
    permit: PaymentsWrite, batch: BatchIn, core: CoreDep, session: DbSession
) -> BatchResult:
    return _ingest(core, session, permit, batch.records)


CATALOGUE_DESCRIPTION = (
    "The shop's whole catalogue: it replaces the one before. Each item is validated on its "
    "own (a GTIN-13's check digit too): good items are stored, sealed like the shop's other "
    "data, bad ones kept in quarantine and listed under `rejected`. `updated_at` is set by "
    "the hub. Consumers see of it what their purpose allows (replenishment: names, category, "
    "case pack and unit, never the barcode)."
)


@router.put(
    "/catalogue", summary="Replace the shop's product catalogue", description=CATALOGUE_DESCRIPTION
)
def replace_catalogue(
    permit: CatalogueWrite, catalogue: CatalogueIn, core: CoreDep, session: DbSession
) -> BatchResult:
    return _ingest(core, session, permit, catalogue.items)


@router.put(
    "/catalogue/csv",
    summary="Replace the shop's product catalogue from a POS export",
    description=CATALOGUE_DESCRIPTION + " The export is read as the other CSV uploads are.",
    openapi_extra=CSV_BODY,
)
def replace_catalogue_csv(
    permit: CatalogueWrite,
    body: CsvBody,
    core: CoreDep,
    session: DbSession,
    encoding: CsvEncoding = None,
) -> BatchResult:
    return _ingest_csv(core, session, permit, body, encoding)


@router.post(
    "/sales/csv",
    summary="Upload a POS CSV export of sales records",
    description=CSV_DESCRIPTION,
    openapi_extra=CSV_BODY,
)
def ingest_sales_csv(
    permit: SalesWrite,
    body: CsvBody,
    core: CoreDep,
    session: DbSession,
    encoding: CsvEncoding = None,
) -> BatchResult:
    return _ingest_csv(core, session, permit, body, encoding)


@router.post(
    "/inventory/csv",
    summary="Upload a POS CSV export of inventory records",
    description=CSV_DESCRIPTION,
    openapi_extra=CSV_BODY,
)
def ingest_inventory_csv(
    permit: InventoryWrite,
    body: CsvBody,
    core: CoreDep,
    session: DbSession,
    encoding: CsvEncoding = None,
) -> BatchResult:
    return _ingest_csv(core, session, permit, body, encoding)


@router.post(
    "/payments/csv",
    summary="Upload a POS CSV export of payments records",
    description=CSV_DESCRIPTION,
    openapi_extra=CSV_BODY,
)
def ingest_payments_csv(
    permit: PaymentsWrite,
    body: CsvBody,
    core: CoreDep,
    session: DbSession,
    encoding: CsvEncoding = None,
) -> BatchResult:
    return _ingest_csv(core, session, permit, body, encoding)


# --- the quarantine: refused records, to fix or discard ---------------------------------------

QuarantineRead = Annotated[Permit, Depends(AuthorizeShop(Resource.quarantine, Action.read))]
QuarantineWrite = Annotated[Permit, Depends(AuthorizeShop(Resource.quarantine, Action.write))]
QuarantinedId = Annotated[int, FastApiPath(ge=1, le=2**63 - 1, description="Its `id` in the list")]


@router.get(
    "/quarantine",
    response_model=QuarantineOut,
    summary="The shop's refused records: why each was refused, and what arrived",
    description="For the shop's own shopkeeper and connectors. Oldest first, a page at a "
    "time; `values` is what arrived, opened from its seal. Every read is audited.",
)
def list_quarantine(
    permit: QuarantineRead,
    core: CoreDep,
    session: DbSession,
    category: Category | None = None,
    cursor: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> QuarantineOut:
    return quarantine.page(
        session,
        core.keyring,
        permit.caller,
        permit.shop,
        category=category,
        after=cursor or 0,
        limit=limit,
        policy_version=permit.policy_version,
    )


@router.post(
    "/quarantine/{qid}/resubmit",
    response_model=BatchResult,
    responses=error_responses(NotFound),
    summary="Send a refused record again, corrected",
    description="The body is the corrected record, shaped as one record of a batch. It is "
    "validated and stored as a batch's would be, and leaves the quarantine; if it is still "
    "refused, the answer is a 422 naming each fault and it stays.",
)
def resubmit_quarantined(
    permit: QuarantineWrite,
    qid: QuarantinedId,
    record: Annotated[dict[str, Any], Body()],
    core: CoreDep,
    session: DbSession,
) -> BatchResult:
    return quarantine.resubmit(
        session,
        core.keyring,
        permit.caller,
        permit.shop,
        qid,
        record,
        policy_version=permit.policy_version,
    )


@router.delete(
    "/quarantine/{qid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(NotFound),
    summary="Discard a refused record (audited)",
)
def discard_quarantined(
    permit: QuarantineWrite, qid: QuarantinedId, session: DbSession
) -> Response:
    quarantine.discard(
        session, permit.caller, permit.shop, qid, policy_version=permit.policy_version
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def document_record_schemas(openapi: dict[str, Any]) -> None:
    """Describe each ingestion endpoint's records in the OpenAPI document.

    The endpoints take ``records`` as a list of anything, so that one bad
    record is rejected on its own instead of failing the batch; the document
    still tells connectors what each record must look like.
    """
    refs, generated = models_json_schema(
        [(spec.schema, "validation") for spec in CATEGORIES.values()],
        ref_template="#/components/schemas/{model}",
    )
    openapi.setdefault("components", {}).setdefault("schemas", {}).update(generated["$defs"])
    for category, spec in CATEGORIES.items():
        method, key = ("put", "items") if spec.replaced else ("post", "records")
        operation = openapi["paths"][f"{router.prefix}/{category.value}"][method]
        operation["requestBody"]["content"]["application/json"]["schema"] = {
            "type": "object",
            "required": [key],
            "properties": {
                key: {"type": "array", "items": refs[(spec.schema, "validation")]},
            },
        }
