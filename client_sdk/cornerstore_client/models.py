"""The hub's answers and requests as typed models.

Each model mirrors one schema of the hub's OpenAPI document, named in
``HUB_SCHEMAS``; the hub's test suite checks every field and which are
required against the document, so a change of the contract fails there
before it surprises a consumer. Fields the hub adds later are ignored, so an
older client keeps working against a newer hub.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Category = Literal["sales", "inventory", "payments", "catalogue"]
AccessMode = Literal["rows", "aggregate-only"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class DataRange(_Model):
    """Which records a consent covers by event time: fixed bounds or the last N days."""

    from_: datetime | None = Field(default=None, alias="from")
    until: datetime | None = None
    last_days: int | None = None


class ConsentRequest(_Model):
    """What a consumer asks a shop for. The shop may approve it narrowed, or refuse."""

    purpose: str
    categories: list[Category]
    expires_at: datetime
    access_mode: AccessMode = "rows"
    data_range: DataRange | None = None
    max_reads_per_day: int | None = None
    valid_from: datetime | None = None
    data_life: str | None = Field(default=None, description="ISO 8601 duration, e.g. P30D")


class Consent(_Model):
    """One consent as the hub holds it now (its newest version)."""

    id: uuid.UUID
    shop_id: uuid.UUID
    consumer_id: uuid.UUID
    consumer_name: str
    consumer_description: str | None
    purpose: str
    categories: list[str]
    status: str
    version: int
    access_mode: str
    data_range: dict[str, Any]
    max_reads_per_day: int | None
    valid_from: datetime
    expires_at: datetime
    data_life: str
    created_at: datetime
    granted_at: datetime | None
    revoked_at: datetime | None
    updated_at: datetime
    uses: int
    last_used_at: datetime | None


class AnalyticsQuery(_Model):
    """A question across shops, answered with differential privacy."""

    purpose: str
    category: Category
    measures: list[str]
    epsilon: float
    group_by: list[str] = []
    since: datetime | None = None
    until: datetime | None = None


class Budget(_Model):
    epsilon_total: float
    epsilon_remaining: float
    period: str


class Noise(_Model):
    mechanism: str
    scale: dict[str, float]
    ci95: dict[str, float]
    threshold: float
    epsilon: float
    delta: float


class AnalyticsAnswer(_Model):
    """Released cells (noisy), how many were suppressed, the shops in scope and what it cost."""

    cells: list[dict[str, Any]]
    suppressed: int
    shops: int
    epsilon_spent: float
    budget: Budget
    noise: Noise


class OrderLine(_Model):
    sku: str
    quantity: int
    case_pack: int
    name: str | None = None
    #: Why this many, in words and numbers the shopkeeper can check.
    reason: str | None = None


class PurchaseOrder(_Model):
    """Lines to order from a warehouse, proposed under ``replenishment``."""

    kind: Literal["purchase-order"] = "purchase-order"
    warehouse: str
    lines: list[OrderLine]


class Reason(_Model):
    code: str
    en: str
    zh: str


class CreditOffer(_Model):
    """A credit line with its reasons, proposed under ``credit-assessment``."""

    kind: Literal["credit-offer"] = "credit-offer"
    line_cents: int
    annual_rate: float
    reasons: list[Reason]


class Proposal(_Model):
    """A proposal as the hub holds it, with the shopkeeper's answer once there is one."""

    id: uuid.UUID
    shop_id: uuid.UUID
    consumer_id: uuid.UUID
    consumer_name: str
    purpose: str
    kind: str
    status: str
    withdrawn: bool
    content: dict[str, Any]
    answer: dict[str, Any] | None
    created_at: datetime
    answered_at: datetime | None


class Webhook(_Model):
    """The consumer's webhook as just registered, with its secret, shown this once."""

    url: str
    created_at: datetime
    secret: str = Field(description="whsec_…: what verify_webhook checks deliveries with")


class SigningKey(_Model):
    """A connector's stream-signing key as the hub registered it; sign with ``key_id``."""

    key_id: str
    principal_id: uuid.UUID
    created_at: datetime
    revoked_at: datetime | None = None


#: Which schema of the hub's OpenAPI document each model mirrors.
HUB_SCHEMAS: dict[type[BaseModel], str] = {
    DataRange: "DataRange",
    ConsentRequest: "ConsentRequestIn",
    Consent: "ConsentOut",
    AnalyticsQuery: "QueryIn",
    Budget: "BudgetOut",
    Noise: "NoiseOut",
    AnalyticsAnswer: "QueryOut",
    OrderLine: "OrderLineIn",
    PurchaseOrder: "PurchaseOrderIn",
    Reason: "ReasonIn",
    CreditOffer: "CreditOfferIn",
    Proposal: "ProposalOut",
    Webhook: "WebhookCreated",
    SigningKey: "SigningKeyOut",
}
