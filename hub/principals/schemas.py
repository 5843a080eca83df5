from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from nacl.bindings import crypto_core_ed25519_is_valid_point
from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class SigningKeyIn(BaseModel):
    """A connector's Ed25519 public key; the connector made the pair and keeps the private half."""

    model_config = ConfigDict(extra="forbid")

    public_key: str = Field(
        description="The 32-byte raw Ed25519 public key, base64url without padding",
        examples=["11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"],
    )

    @field_validator("public_key")
    @classmethod
    def _ed25519(cls, value: str) -> str:
        try:
            raw = _raw(value)
        except (binascii.Error, ValueError):
            raise ValueError("not base64url") from None
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        if not crypto_core_ed25519_is_valid_point(raw):
            # A point of small order (or off the curve) verifies signatures no one made.
            raise ValueError("not a usable Ed25519 public key: make a new key pair")
        return value

    @property
    def raw(self) -> bytes:
        return _raw(self.public_key)


def _raw(base64url: str) -> bytes:
    padded = base64url + "=" * (-len(base64url) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True)


class SigningKeyOut(BaseModel):
    key_id: str = Field(description="What each signed message names as `Cornerstore-Key`")
    principal_id: uuid.UUID
    created_at: datetime
    revoked_at: datetime | None = Field(
        default=None, description="When it was revoked; messages signed with it are refused"
    )


class SigningKeysOut(BaseModel):
    keys: list[SigningKeyOut] = Field(description="Newest first, revoked ones too")
