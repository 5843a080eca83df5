"""The consent API's shapes: the terms a consent states, requests, narrowing, answers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cornerstore.authz import PurposeName
from cornerstore.categories import Category
from cornerstore.fieldtypes import Timestamp
from cornerstore.models.consent import AccessMode, ConsentStatus

#: An ISO 8601 duration such as "P30D".
Duration = Annotated[timedelta, Field(examples=["P30D"])]


class DataRange(BaseModel):
    """Which of the shop's data a consent covers: fixed dates, or a rolling window.

    Give ``from`` and ``until`` (until exclusive), or ``last_days`` alone.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Timestamp | None = Field(default=None, alias="from")
    until: Timestamp | None = None
    last_days: int | None = Field(default=None, ge=1, le=36600)

    @model_validator(mode="after")
    def _one_kind(self) -> DataRange:
        fixed = self.from_ is not None or self.until is not None
        if self.last_days is not None and fixed:
            raise ValueError("give either last_days, or from and until, not both")
        if self.last_days is None and (self.from_ is None or self.until is None):
            raise ValueError("a fixed range needs both from and until")
        if self.from_ is not None and self.until is not None and self.until <= self.from_:
            raise ValueError("until must be after from")
        return self


class _Terms(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: PurposeName
    categories: list[Category] = Field(min_length=1)
    access_mode: AccessMode = Field(
        default=AccessMode.rows,
        description="rows, or aggregate-only (the data may only feed thresholded aggregates)",
    )
    data_range: DataRange | None = Field(
        default=None, description="Defaults to the purpose's longest range, as a rolling window"
    )
    max_reads_per_day: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Reads per UTC day; null for no limit"
    )
    valid_from: Timestamp | None = Field(default=None, description="Defaults to now")
    expires_at: Timestamp = Field(description="Valid until (exclusive), RFC 3339 with an offset")
    data_life: Duration | None = Field(
        default=None,
        description="How long the consumer may keep what it read (ISO 8601 duration); "
        "defaults to the purpose's longest",
    )


class ConsentIn(_Terms):
    """A shopkeeper's direct grant."""

    consumer_id: uuid.UUID


class ConsentRequestIn(_Terms):
    """A consumer's request for a shop's consent; the consumer is the caller."""


class NarrowingIn(BaseModel):
    """What a shopkeeper may narrow when approving a request; every field optional."""

    model_config = ConfigDict(extra="forbid")

    categories: list[Category] | None = Field(default=None, min_length=1)
    access_mode: AccessMode | None = None
    data_range: DataRange | None = None
    max_reads_per_day: int | None = Field(default=None, ge=1, le=1_000_000)
    expires_at: Timestamp | None = None
    data_life: Duration | None = None


class ConsentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    shop_id: uuid.UUID
    consumer_id: uuid.UUID
    consumer_name: str = Field(description="Who the consumer is, as the hub's admin named it")
    consumer_description: str | None = Field(description="What the consumer does, in a line")
    purpose: str
    categories: list[str]
    status: ConsentStatus = Field(
        description="requested, active, paused, revoked, refused, expired, or superseded"
    )
    version: int
    access_mode: AccessMode
    data_range: dict[str, Any]
    max_reads_per_day: int | None
    valid_from: datetime
    expires_at: datetime = Field(description="Valid until (exclusive)")
    data_life: Duration
    created_at: datetime
    granted_at: datetime | None
    revoked_at: datetime | None
    updated_at: datetime
    uses: int = Field(description="Reads answered under this consent")
    last_used_at: datetime | None


class ConsentsOut(BaseModel):
    consents: list[ConsentOut]


class ConsentVersionOut(BaseModel):
    consent_id: uuid.UUID
    version: int
    status: str
    change: str
    changed_by: uuid.UUID
    changed_by_role: str
    changed_at: datetime
    artefact: dict[str, Any]
    receipt: str | None = Field(description="JWS compact; null for versions from before receipts")


class ConsentHistoryOut(BaseModel):
    versions: list[ConsentVersionOut]


class PurposeOut(BaseModel):
    code: str
    name: dict[str, str]
    description: dict[str, str]
    dpv: str = Field(description="The matching W3C Data Privacy Vocabulary term")
    fields: dict[str, list[str]] = Field(description="Per data category, the fields it may see")
    max_data_range: Duration
    max_validity: Duration
    max_data_life: Duration


class PurposesOut(BaseModel):
    purposes: list[PurposeOut]
