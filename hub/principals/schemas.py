from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from cornerstore.fieldtypes import Text
from cornerstore.models.principals import Role


class PrincipalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text
    role: Role
    shop_ids: list[uuid.UUID] = Field(
        default_factory=list,
        description="A shopkeeper's shops (one or more); a connector's one shop; empty otherwise",
    )


class PrincipalCreated(BaseModel):
    id: uuid.UUID
    name: str
    role: Role
    shop_ids: list[uuid.UUID]
    api_key: str = Field(description="Shown this once; only its hash is stored")
