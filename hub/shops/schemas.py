from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cornerstore.fieldtypes import Text


class ShopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text
    district: Text | None = None


class ShopOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    district: str | None
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
