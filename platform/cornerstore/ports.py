"""What the core asks of the domains above it, and the shapes it hands them.

The gate and the authorization dependency must write to the audit log and ask
consent, yet ``audit`` and ``consent`` build on the core, not the other way
round. So the core names what it needs here, as protocols and plain types,
and :mod:`hub.runtime` hands it the implementations (``audit.writer`` and
``consent.enforcement``) when it assembles the hub.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from cornerstore.authz import Authorizer
from cornerstore.identity import Caller
from cornerstore.keys.ring import KeyRing
from cornerstore.ratelimit import RateLimiter
from cornerstore.settings import Settings


class Decision(StrEnum):
    allow = "allow"
    deny = "deny"


class AuditAction(StrEnum):
    """Every action the audit log records, as ``GET /v1/audit/events?action=`` takes them."""

    #: A read of shop data, allowed or refused.
    read = "read"
    #: A batch sent by a connector or a shopkeeper, or its refusal.
    ingest = "ingest"
    #: A shopkeeper's export of their shop.
    export = "export"
    shop_create = "shop.create"
    #: A change to a shop's own details (its time zone), or its refusal.
    shop_write = "shop.write"
    shop_read = "shop.read"
    shop_erase = "shop.erase"
    principal_create = "principal.create"
    principal_disable = "principal.disable"
    principal_rotate_key = "principal.rotate-key"
    #: A connector's key for signing its messages on the ingest stream.
    principal_add_signing_key = "principal.add-signing-key"
    principal_revoke_signing_key = "principal.revoke-signing-key"
    #: A one-time sign-in link minted for the web console, and the session it started.
    principal_sign_in_link = "principal.sign-in-link"
    session_start = "session.start"
    consent_request = "consent.request"
    consent_approve = "consent.approve"
    consent_refuse = "consent.refuse"
    consent_grant = "consent.grant"
    consent_pause = "consent.pause"
    consent_resume = "consent.resume"
    consent_revoke = "consent.revoke"
    consent_expire = "consent.expire"
    consent_supersede = "consent.supersede"
    # Refusals of other requests about a shop are named resource.action.
    consent_read = "consent.read"
    consent_write = "consent.write"
    consent_request_create = "consent-request.create"
    consent_receipt_read = "consent-receipt.read"
    consent_history_read = "consent-history.read"
    access_log_read = "access-log.read"
    #: A query across shops; each shop it counted finds it in its access log.
    analytics_query = "analytics.query"
    privacy_ledger_read = "privacy-ledger.read"
    shop_summary_read = "shop-summary.read"
    shop_export = "shop.export"
    #: A consumer's proposal to a shop, and the shopkeeper's answer to it.
    proposal_create = "proposal.create"
    proposal_answer = "proposal.answer"
    proposal_read = "proposal.read"
    proposal_write = "proposal.write"
    #: A shop's own principal reading, fixing or discarding its refused records.
    quarantine_read = "quarantine.read"
    quarantine_resubmit = "quarantine.resubmit"
    quarantine_discard = "quarantine.discard"
    quarantine_write = "quarantine.write"


#: Who the audit log names when the operator's CLI, not an API principal, acted.
OPERATOR = "operator"


class AuditDraft(BaseModel):
    """What a caller hands the audit log; the log adds seq, time and hashes."""

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

    @classmethod
    def of(
        cls,
        actor: Caller | None,
        action: str,
        reason: str,
        *,
        decision: Decision = Decision.allow,
        shop_id: uuid.UUID | None = None,
        category: str | None = None,
        purpose: str | None = None,
        policy_version: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditDraft:
        """An entry about what ``actor`` did; ``None`` is the operator, through the CLI."""
        return cls(
            action=action,
            decision=decision,
            reason=reason,
            principal_id=actor.id if actor else None,
            principal_role=actor.role if actor else OPERATOR,
            shop_id=shop_id,
            category=category,
            purpose=purpose,
            policy_version=policy_version,
            details=details or {},
        )


class AuditUnavailable(Exception):
    """The entry could not be made durable in time; the caller must fail closed."""


class AuditSink(Protocol):
    """Makes one entry durable before returning, on a connection of its own."""

    def append(self, draft: AuditDraft) -> int:
        """Return the entry's sequence number once committed; raise :class:`AuditUnavailable`."""
        ...


@dataclass(frozen=True, slots=True)
class Allowance:
    """A consent that allows the read, and the window of data it may see."""

    consent_id: uuid.UUID
    since: datetime | None
    until: datetime | None
    max_reads_per_day: int | None


class ConsentRefused(Exception):
    """No consent allows the read; ``reason`` is what the audit log records."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class ConsentCheck(Protocol):
    """Whether a consumer may read a shop's category now, and within which window."""

    def check(
        self,
        session: Session,
        *,
        shop_id: uuid.UUID,
        consumer_id: uuid.UUID,
        purpose: str,
        category: str,
        since: datetime | None,
        until: datetime | None,
        now: datetime,
    ) -> Allowance:
        """The consent that allows this read; raise :class:`ConsentRefused` if none does."""
        ...

    def count(self, allowance: Allowance, now: datetime) -> None:
        """Count one use against ``allowance``; raise :class:`ConsentRefused` past its limits."""
        ...


class Core(Protocol):
    """The parts of a running hub that the core's dependencies and its gate use.

    :class:`hub.runtime.Hub` is one; domains that need more of the hub extend
    this protocol with what they need (``audit.deps``, ``consent.deps``).
    """

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def authorizer(self) -> Authorizer: ...

    @property
    def keyring(self) -> KeyRing: ...

    @property
    def audit_writer(self) -> AuditSink: ...

    @property
    def consent_check(self) -> ConsentCheck: ...

    @property
    def rate_limiter(self) -> RateLimiter: ...
