from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from consent.models import ConsentStatus
from cornerstore.authz import PurposeName
from cornerstore.fieldtypes import Timestamp
from cornerstore.records.models import Category


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    consumer_id: uuid.UUID
    purpose: PurposeName
    categories: list[Category] = Field(min_length=1)
    expires_at: Timestamp = Field(description="RFC 3339 with an offset; must be in the future")


class ConsentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    shop_id: uuid.UUID
    consumer_id: uuid.UUID
    purpose: str
    categories: list[str]
    status: ConsentStatus = Field(description="active, expired or revoked")
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class ConsentsOut(BaseModel):
    consents: list[ConsentOut]
