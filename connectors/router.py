"""``POST /v1/shops/{shop_id}/{sales,inventory,payments}``: JSON batches from a shop's connector."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from pydantic.json_schema import models_json_schema

from connectors import pos_csv, service
from connectors.schemas import BatchIn, BatchResult
from cornerstore.access import authorize
from cornerstore.deps import CoreDep, CurrentCaller, DbSession
from cornerstore.errors import SHOP_ERRORS, PayloadTooLarge, error_responses
from cornerstore.models.records import Category

INGEST_ERRORS = SHOP_ERRORS | error_responses(PayloadTooLarge)
router = APIRouter(prefix="/v1/shops/{shop_id}", tags=["ingestion"], responses=INGEST_ERRORS)


def _ingest(
    hub: CoreDep,
    session: DbSession,
    caller: CurrentCaller,
    shop_id: uuid.UUID,
    category: Category,
    batch: BatchIn,
) -> BatchResult:
    permit = authorize(hub, session, caller, resource=category, action="write", shop_id=shop_id)
    _check_size(hub, len(batch.records))
    cipher = hub.keyring.cipher(session, shop_id)
    return service.ingest(
        session, cipher, caller, category, batch.records, policy_version=permit.policy_version
    )


def _ingest_csv(
    hub: CoreDep,
    session: DbSession,
    caller: CurrentCaller,
    shop_id: uuid.UUID,
    category: Category,
    body: bytes,
) -> BatchResult:
    permit = authorize(hub, session, caller, resource=category, action="write", shop_id=shop_id)
    parsed = pos_csv.parse(body, service.SCHEMAS[category])
    _check_size(hub, len(parsed.records))
    cipher = hub.keyring.cipher(session, shop_id)
    result = service.ingest(
        session,
        cipher,
        caller,
        category,
        parsed.records,
        policy_version=permit.policy_version,
        unreadable=parsed.unreadable,
    )
    rejected = [r.model_copy(update={"line": parsed.lines[r.index]}) for r in result.rejected]
    return result.model_copy(update={"rejected": rejected})


def _check_size(hub: CoreDep, count: int) -> None:
    if count > hub.settings.ingest_max_records:
        raise PayloadTooLarge(
            f"a batch holds at most {hub.settings.ingest_max_records} records; "
            f"this one holds {count}: split it"
        )


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


def _route(category: Category) -> None:
    def endpoint(
        hub: CoreDep, session: DbSession, caller: CurrentCaller, shop_id: uuid.UUID, batch: BatchIn
    ) -> BatchResult:
        return _ingest(hub, session, caller, shop_id, category, batch)

    router.add_api_route(
        f"/{category.value}",
        endpoint,
        methods=["POST"],
        status_code=status.HTTP_200_OK,
        response_model=BatchResult,
        name=f"ingest_{category.value}",
        summary=f"Send a batch of {category.value} records",
        description=(
            "Each record is validated on its own: good records are stored, bad ones are "
            "kept in quarantine and listed under `rejected` with their index, field and "
            "reason. Records already stored (same `event_id`, or for inventory the same "
            "SKU and count time) are counted under `duplicates` and not stored again."
        ),
    )

    def upload(
        hub: CoreDep,
        session: DbSession,
        caller: CurrentCaller,
        shop_id: uuid.UUID,
        body: RawBody,
    ) -> BatchResult:
        return _ingest_csv(hub, session, caller, shop_id, category, body)

    router.add_api_route(
        f"/{category.value}/csv",
        upload,
        methods=["POST"],
        response_model=BatchResult,
        name=f"ingest_{category.value}_csv",
        summary=f"Upload a POS CSV export of {category.value} records",
        description=(
            "The body is UTF-8 CSV (`text/csv`): a header line naming the record fields, "
            "then one record a line. Records are handled as in the JSON batch, and each "
            "rejection also names its `line` in the file."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
    )


for _category in Category:
    _route(_category)


def document_record_schemas(openapi: dict[str, Any]) -> None:
    """Describe each ingestion endpoint's records in the OpenAPI document.

    The endpoints take ``records`` as a list of anything, so that one bad
    record is rejected on its own instead of failing the batch; the document
    still tells connectors what each record must look like.
    """
    refs, generated = models_json_schema(
        [(schema, "validation") for schema in service.SCHEMAS.values()],
        ref_template="#/components/schemas/{model}",
    )
    openapi.setdefault("components", {}).setdefault("schemas", {}).update(generated["$defs"])
    for category, schema in service.SCHEMAS.items():
        operation = openapi["paths"][f"{router.prefix}/{category.value}"]["post"]
        operation["requestBody"]["content"]["application/json"]["schema"] = {
            "type": "object",
            "required": ["records"],
            "properties": {
                "records": {"type": "array", "items": refs[(schema, "validation")]},
            },
        }
