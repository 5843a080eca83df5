"""The data categories a shop sends, each described once, here.

A category is its :class:`Category` member, the schema one record must meet,
and its entry in :data:`CATEGORIES`: which field holds its event time (kept in
the clear for time-window queries), which fields identify a record sent again,
and every field in the order the API returns them. Ingestion, the gate, exports
and the policy tests read all of it from here.

Adding a category (docs/architecture.md, "Where to add…"): its schema and entry
here, its lines in ``policies/policy.csv``, the purposes that may see it in
``policies/purposes.toml``, its two ingestion endpoints and its read endpoint
(written out in ``connectors/router.py`` and ``cornerstore/reads.py`` so that
``grep "/name"`` finds them), and tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cornerstore.fieldtypes import Gtin13, Text, Timestamp


class Category(StrEnum):
    sales = "sales"
    inventory = "inventory"
    payments = "payments"
    #: The shop's products: names, barcode, case pack. Sent whole (PUT), not as events.
    catalogue = "catalogue"


#: Bounds no real shop reaches, so that absurd values are refused, not stored.
MAX_QUANTITY = 1_000_000_000
MAX_CENTS = 10**12


class RecordIn(BaseModel):
    """One record as a shop sends it; each category's schema extends this."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SaleIn(RecordIn):
    event_id: Text
    occurred_at: Timestamp = Field(description="RFC 3339 with an offset")
    sku: Text
    quantity: int = Field(
        strict=True, ge=-MAX_QUANTITY, le=MAX_QUANTITY, description="Negative for a return"
    )
    unit_price_cents: int = Field(strict=True, ge=0, le=MAX_CENTS)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"


class InventoryIn(RecordIn):
    sku: Text
    on_hand: int = Field(strict=True, ge=0, le=MAX_QUANTITY)
    counted_at: Timestamp


class PaymentMethod(StrEnum):
    qr = "qr"
    cash = "cash"
    card = "card"


class PaymentIn(RecordIn):
    event_id: Text
    occurred_at: Timestamp
    amount_cents: int = Field(strict=True, gt=0, le=MAX_CENTS)
    method: PaymentMethod
    payer_ref: Text = Field(description="Identifies the payer. Sensitive: sealed, never logged")


class CatalogueItemIn(RecordIn):
    sku: Text
    name_zh: Text | None = None
    name_en: Text | None = None
    gtin: Gtin13 | None = Field(
        default=None, description="The GTIN-13 (EAN-13) barcode; its check digit is checked"
    )
    category: Text | None = Field(default=None, description="The shop's own grouping, e.g. 饮料")
    case_pack: int | None = Field(default=None, strict=True, ge=1, le=100_000)
    unit: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)] | None
    ) = Field(default=None, description="What one is, e.g. 瓶, 包, bottle")
    updated_at: Timestamp = Field(
        description="When the hub took this version of the catalogue (it sets it on a PUT)"
    )


@dataclass(frozen=True, slots=True)
class CategorySpec:
    category: Category
    schema: type[RecordIn]
    #: The field that holds the event time, stored in the clear.
    time_field: str
    #: The fields whose values make a record the same record when it is sent again.
    natural_id_fields: tuple[str, ...]
    #: Sent whole: a PUT replaces the shop's records of it (the catalogue), rather than
    #: adding events to them.
    replaced: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field, in the order the API returns them: the schema's order."""
        return tuple(self.schema.model_fields)

    def natural_id(self, record: RecordIn) -> str:
        """What identifies ``record`` among the category's records (keyed before it is stored).

        Times are in UTC already: the same count sent with another offset is the same.
        """
        fields = self.natural_id_fields
        if len(fields) == 1:  # An event id: the common case, once per record ingested.
            return _plain(getattr(record, fields[0]))
        return "|".join([_plain(getattr(record, name)) for name in fields])


def _plain(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


CATEGORIES: Mapping[Category, CategorySpec] = {
    spec.category: spec
    for spec in (
        CategorySpec(Category.sales, SaleIn, "occurred_at", ("event_id",)),
        CategorySpec(Category.inventory, InventoryIn, "counted_at", ("sku", "counted_at")),
        CategorySpec(Category.payments, PaymentIn, "occurred_at", ("event_id",)),
        CategorySpec(Category.catalogue, CatalogueItemIn, "updated_at", ("sku",), replaced=True),
    )
}
