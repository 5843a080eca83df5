from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from audit.verification import Phase, Status
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


class VerificationOut(BaseModel):
    """A full verification of the log, in the background."""

    id: uuid.UUID
    status: Status = Field(
        description="`interrupted`: the process running it stopped; start another"
    )
    entries: int = Field(description="How many entries it covers: the log's size when it began")
    percent: int = Field(ge=0, le=100, description="How far it has got")
    phase: Phase = Field(
        description="`chain`: each entry against the hash chain; `tree`: each leaf against "
        "the Merkle tree and every signed checkpoint"
    )
    started_at: datetime
    finished_at: datetime | None
    first_bad_seq: int | None = Field(
        description="When it failed: the first entry that did not verify"
    )
    problem: str | None = Field(description="When it failed or stopped: why")


class DayCountOut(BaseModel):
    day: date = Field(description="The UTC day")
    action: str
    decision: Decision
    purpose: str | None
    reason: str = Field(description="The refusal's reason; empty for what was allowed")
    count: int


class ReaderCountOut(BaseModel):
    principal_id: uuid.UUID
    purpose: str | None = Field(description="None: the shop's own reads")
    count: int


class AuditCountsOut(BaseModel):
    """What the console's charts draw: entries per UTC day and kind, and who read how much."""

    days: list[DayCountOut]
    readers: list[ReaderCountOut] = Field(description="Allowed reads over the days, most first")
