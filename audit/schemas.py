from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Decision(StrEnum):
    allow = "allow"
    deny = "deny"


class AuditDraft(BaseModel):
    """What a caller hands the audit writer; the writer adds seq, time and hashes."""

    model_config = ConfigDict(frozen=True)

    action: str
    decision: Decision
    reason: str
    principal_id: uuid.UUID | None = None
    principal_role: str | None = None
    shop_id: uuid.UUID | None = None
    category: str | None = None
    purpose: str | None = None
    policy_version: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    recorded_at: datetime
    action: str = Field(description="e.g. read, ingest, consent.grant, consent.revoke")
    decision: Decision
    reason: str
    principal_id: uuid.UUID | None
    principal_role: str | None
    principal_name: str | None = Field(
        default=None, description="The principal's current name (not part of the chained entry)"
    )
    shop_id: uuid.UUID | None
    category: str | None
    purpose: str | None
    policy_version: str | None
    details: dict[str, Any]


class AuditEventsOut(BaseModel):
    events: list[AuditEventOut]
    next: str | None = Field(description="Cursor for the next page, or null")
