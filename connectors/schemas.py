"""What connectors send: JSON batches of sales lines, inventory counts and payments."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cornerstore.fieldtypes import Text, Timestamp

#: Bounds no real shop reaches, so that absurd values are refused, not stored.
MAX_QUANTITY = 1_000_000_000
MAX_CENTS = 10**12


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SaleIn(_Record):
    event_id: Text
    occurred_at: Timestamp = Field(description="RFC 3339 with an offset")
    sku: Text
    quantity: int = Field(
        strict=True, ge=-MAX_QUANTITY, le=MAX_QUANTITY, description="Negative for a return"
    )
    unit_price_cents: int = Field(strict=True, ge=0, le=MAX_CENTS)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"


class InventoryIn(_Record):
    sku: Text
    on_hand: int = Field(strict=True, ge=0, le=MAX_QUANTITY)
    counted_at: Timestamp


class PaymentMethod(StrEnum):
    qr = "qr"
    cash = "cash"
    card = "card"


class PaymentIn(_Record):
    event_id: Text
    occurred_at: Timestamp
    amount_cents: int = Field(strict=True, gt=0, le=MAX_CENTS)
    method: PaymentMethod
    payer_ref: Text = Field(description="Identifies the payer. Sensitive: sealed, never logged")


class BatchIn(BaseModel):
    """Records are validated one by one, so one bad record does not sink the batch."""

    records: list[Any] = Field(
        description="Sales lines, inventory counts or payments, as the path says"
    )


class RejectedRecord(BaseModel):
    index: int = Field(description="Position of the record in the batch, from 0")
    field: str = Field(description="The field at fault, or '' for the record as a whole")
    reason: str
    line: int | None = Field(default=None, description="For CSV uploads: the file line, from 1")


class BatchResult(BaseModel):
    batch_id: str
    accepted: int = Field(description="Records stored by this batch")
    duplicates: int = Field(description="Records already stored (same event_id), not stored again")
    rejected: list[RejectedRecord] = Field(description="Kept in quarantine with these reasons")
