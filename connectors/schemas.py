"""What connectors send and get back: batches of records (``cornerstore.categories``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class BatchIn(BaseModel):
    """Records are validated one by one, so one bad record does not sink the batch."""

    records: list[Any] = Field(
        description="Sales lines, inventory counts or payments, as the path says"
    )


class CatalogueIn(BaseModel):
    """The shop's whole catalogue; items are validated one by one, as a batch's records are."""

    items: list[Any] = Field(description="The shop's products, one item per SKU")


class RecordError(BaseModel):
    field: str = Field(description="The field at fault, or '' for the record as a whole")
    reason: str


class RejectedRecord(BaseModel):
    index: int = Field(description="Position of the record in the batch, from 0")
    field: str = Field(description="The first field at fault, or '' for the record as a whole")
    reason: str = Field(description="Why that field was refused")
    line: int | None = Field(default=None, description="For CSV uploads: the file line, from 1")
    errors: list[RecordError] = Field(
        default_factory=list, description="Every fault of the record, the first one included"
    )

    @classmethod
    def of(cls, index: int, errors: list[RecordError], line: int | None = None) -> RejectedRecord:
        return cls(
            index=index, field=errors[0].field, reason=errors[0].reason, line=line, errors=errors
        )


class BatchResult(BaseModel):
    batch_id: str
    accepted: int = Field(description="Records stored by this batch")
    duplicates: int = Field(description="Records already stored (same event_id), not stored again")
    rejected: list[RejectedRecord] = Field(description="Kept in quarantine with these reasons")


class QuarantinedOut(BaseModel):
    id: int = Field(description="Resubmit or discard it by this id")
    category: str
    reason: str = Field(description="Why it was refused (every fault, each with its field)")
    field: str = Field(description="The first field at fault, or '' for the record as a whole")
    line: int | None = Field(description="For a CSV upload, the file line it came from")
    batch_id: uuid.UUID
    received_at: datetime
    values: Any = Field(description="What arrived, as it arrived: the shop's own data")


class QuarantineOut(BaseModel):
    records: list[QuarantinedOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last")
