from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from connectors.profiles import GENERIC, profiles
from cornerstore.fieldtypes import Text, TimeZoneName

_TIME_ZONE = (
    "The IANA time zone the shop keeps its days in (`Asia/Shanghai`): the portal shows times "
    "and counts today's takings in it. None: UTC, and the portal says so."
)


def _known_profile(code: str) -> str:
    if code not in profiles():
        raise ValueError(f"must be one of: {', '.join(profiles())}")
    return code


PosProfile = Annotated[
    str,
    AfterValidator(_known_profile),
    Field(
        description="The profile the shop's POS CSV exports are read with: which columns hold "
        f"which fields, in which units. None: `{GENERIC}`, the API's own field names.",
        json_schema_extra={"enum": sorted(profiles())},
    ),
]


class ShopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text
    district: Text | None = None
    time_zone: TimeZoneName | None = Field(default=None, description=_TIME_ZONE)
    pos_profile: PosProfile | None = None


class ShopChange(BaseModel):
    """The shop's own details that may change after it is registered: those sent change."""

    model_config = ConfigDict(extra="forbid")

    time_zone: TimeZoneName | None = Field(default=None, description=_TIME_ZONE)
    pos_profile: PosProfile | None = None

    @model_validator(mode="after")
    def names_a_change(self) -> ShopChange:
        if not self.model_fields_set:
            raise ValueError("name what changes: time_zone, pos_profile or both")
        return self


class ShopOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    district: str | None
    time_zone: str | None
    pos_profile: str | None
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
