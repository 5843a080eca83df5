from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cornerstore.fieldtypes import Text, TimeZoneName

_TIME_ZONE = (
    "The IANA time zone the shop keeps its days in (`Asia/Shanghai`): the portal shows times "
    "and counts today's takings in it. None: UTC, and the portal says so."
)


class ShopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text
    district: Text | None = None
    time_zone: TimeZoneName | None = Field(default=None, description=_TIME_ZONE)


class ShopChange(BaseModel):
    """The shop's own details that may change after it is registered."""

    model_config = ConfigDict(extra="forbid")

    time_zone: TimeZoneName | None = Field(description=_TIME_ZONE)


class ShopOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    district: str | None
    time_zone: str | None
    created_at: datetime


class ErasureOut(BaseModel):
    shop_id: uuid.UUID
    status: Literal["erased", "keys_pending"] = Field(
        description="`erased`: rows deleted and the shop's key destroyed. `keys_pending`: rows "
        "deleted, key destruction failed and is retried at the hub's next start or by "
        "`cornerstore keys finish-erasures`."
    )
    consents_ended: list[uuid.UUID]
    records_deleted: dict[str, int] = Field(description="Deleted records per category")
    quarantined_deleted: int
