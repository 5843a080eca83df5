from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cornerstore.ports import Decision


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int = Field(
        description="The entry's number, from 1; its leaf index in the Merkle tree "
        "(/v1/audit/entries, proofs) is seq - 1"
    )
    recorded_at: datetime
    action: str = Field(description="One of the `action` filter's values (AuditAction)")
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
