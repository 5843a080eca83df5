from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

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
