"""The shapes of proposals: an order to place, a credit line, and the shop's answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cornerstore.fieldtypes import Text


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderLineIn(_In):
    sku: Annotated[Text, Field(max_length=200)]
    name: Annotated[Text, Field(max_length=200)] | None = None
    quantity: int = Field(strict=True, ge=0, le=1_000_000)
    case_pack: int = Field(strict=True, ge=1, le=10_000)
    #: Why this many, in words and numbers the shopkeeper can check.
    reason: Annotated[Text, Field(max_length=500)] | None = None

    @model_validator(mode="after")
    def whole_cases(self) -> Self:
        if self.quantity % self.case_pack:
            raise ValueError(f"quantity must be whole cases of {self.case_pack}")
        return self


class PurchaseOrderIn(_In):
    kind: Literal["purchase-order"]
    #: Who the order goes to.
    warehouse: Annotated[Text, Field(max_length=200)]
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)


class ReasonIn(_In):
    code: Annotated[Text, Field(max_length=40)]
    en: Annotated[Text, Field(max_length=500)]
    zh: Annotated[Text, Field(max_length=500)]


class CreditOfferIn(_In):
    kind: Literal["credit-offer"]
    line_cents: int = Field(strict=True, gt=0, le=10**12)
    annual_rate: float = Field(ge=0, le=1)
    reasons: list[ReasonIn] = Field(min_length=1, max_length=20)


ProposalIn = Annotated[PurchaseOrderIn | CreditOfferIn, Field(discriminator="kind")]


class AnsweredLine(_In):
    sku: Annotated[Text, Field(max_length=200)]
    quantity: int = Field(strict=True, ge=0, le=1_000_000)


class AnswerIn(_In):
    decision: Literal["accept", "decline"]
    #: An order accepted with other quantities (whole cases, SKUs of the proposal only).
    lines: list[AnsweredLine] | None = Field(default=None, max_length=500)


class ProposalOut(BaseModel):
    id: uuid.UUID
    shop_id: uuid.UUID
    consumer_id: uuid.UUID
    consumer_name: str
    purpose: str
    kind: str
    status: str = Field(description="pending, accepted or declined")
    #: True when the consent it came under no longer allows it: it can no longer be accepted.
    withdrawn: bool
    content: dict[str, Any]
    answer: dict[str, Any] | None
    created_at: datetime
    answered_at: datetime | None


class ProposalsOut(BaseModel):
    proposals: list[ProposalOut]
