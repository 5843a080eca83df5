from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cornerstore.fieldtypes import Text
from cornerstore.models.principals import Role


class PrincipalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text
    role: Role
    description: Text | None = Field(
        default=None, description="For a consumer: what it does, shown to shopkeepers"
    )
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


class PrincipalOut(BaseModel):
    id: uuid.UUID
    name: str
    role: Role
    description: str | None = None
    shop_ids: list[uuid.UUID]
    created_at: datetime
    disabled_at: datetime | None = Field(
        default=None, description="When it was disabled; its keys answer 401 from then on"
    )


class PrincipalsOut(BaseModel):
    principals: list[PrincipalOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


class DisabledOut(BaseModel):
    id: uuid.UUID
    disabled_at: datetime


class KeyRotated(BaseModel):
    id: uuid.UUID = Field(description="The principal's id")
    api_key: str = Field(description="The new key, shown this once; only its hash is stored")
    previous_keys_expire_at: datetime = Field(
        description="The principal's earlier keys stop working at this time"
    )


class SignInLinkOut(BaseModel):
    url: str = Field(description="Open once, in a browser, before expires_at; shown this once")
    expires_at: datetime


class ConsumerOut(BaseModel):
    """What a shopkeeper may know of a consumer asking for, or holding, its consent."""

    id: uuid.UUID
    name: str
    description: str | None
