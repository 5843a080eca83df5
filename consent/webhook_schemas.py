"""The webhook API's shapes: registering a URL, the secret shown once, the delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cornerstore.fieldtypes import PlainText


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Checked in full by the router (consent.webhooks.url_problem), which knows
    # whether this hub accepts plain http.
    url: PlainText = Field(
        description="Where events are POSTed: an absolute https URL (http outside production)",
        examples=["https://lender.example/hooks/cornerstore"],
    )


class WebhookOut(BaseModel):
    url: str
    created_at: datetime = Field(description="When this URL and its secret were registered")


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="Shown this once: whsec_ and the standard base64 of the 32-byte HMAC-SHA256 "
        "key that signs every delivery (Standard Webhooks). Registering again replaces it."
    )


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="The event's id, as in its body and Cornerstore-Event-Id")
    event_type: str = Field(examples=["consent.status_changed"])
    payload: dict[str, Any] = Field(description="The event's body, as sent")
    state: str = Field(description="pending, delivered or failed (no more attempts)")
    attempts: int
    last_status: int | None = Field(description="The HTTP status of the last attempt, if any")
    last_error: str | None = Field(
        description="Why the last attempt got no answer (an error type such as TimeoutError)"
    )
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="Set while the event is pending")
    delivered_at: datetime | None


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut] = Field(description="Newest first")
    next: str | None = Field(description="Cursor for the next (older) page, or null")
