"""Authorization for every endpoint: Casbin decides, refusals are audited.

The data-read gate (:mod:`cornerstore.gate`) starts with :func:`authorize`
too, so there is one place where a caller's relation to a shop is derived and
one place where a refusal becomes an answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from opentelemetry import trace
from sqlalchemy.orm import Session

from cornerstore.authz import OTHER, OWN, DecisionRequest
from cornerstore.errors import Forbidden, NotFound
from cornerstore.identity import Caller
from cornerstore.models.records import Category
from cornerstore.ports import AuditDraft, Core, Decision

NO_PURPOSE = "none"
DATA_CATEGORIES = frozenset(c.value for c in Category)
_tracer = trace.get_tracer("cornerstore.access")


@dataclass(frozen=True, slots=True)
class Permit:
    """Proof that Casbin allowed ``caller`` to do ``action`` on ``resource``."""

    caller: Caller
    shop_id: uuid.UUID | None
    resource: str
    action: str
    purpose: str
    relation: str
    policy_version: str


def relation_of(caller: Caller, shop_id: uuid.UUID | None) -> str:
    return OWN if shop_id is not None and shop_id in caller.shop_ids else OTHER


def authorize(
    hub: Core,
    session: Session,
    caller: Caller,
    *,
    resource: str,
    action: str,
    shop_id: uuid.UUID | None = None,
    purpose: str = NO_PURPOSE,
) -> Permit:
    """Allow, or raise. About a shop, a refusal is a 404 (the shop's existence
    stays hidden) and is written to the audit log; otherwise it is a 403.

    Call it before the request writes anything: a refusal commits its audit
    entry on ``session`` after rolling back what the session held.
    """
    relation = relation_of(caller, shop_id)
    request = DecisionRequest(caller.role, relation, resource, action, purpose)
    with _tracer.start_as_current_span(
        "gate.authorize", record_exception=False, set_status_on_exception=False
    ) as span:
        allowed = hub.authorizer.decide(request)
        span.set_attribute("cornerstore.decision", "allow" if allowed else "deny")
        span.set_attribute("cornerstore.policy_version", hub.authorizer.policy_version)
    if allowed:
        return Permit(
            caller, shop_id, resource, action, purpose, relation, hub.authorizer.policy_version
        )
    if shop_id is None:
        raise Forbidden()
    is_data = resource in DATA_CATEGORIES
    record_refusal(
        hub,
        session,
        caller,
        action=("read" if action == "read" else "ingest") if is_data else f"{resource}.{action}",
        shop_id=shop_id,
        reason="policy",
        category=resource if is_data else None,
        purpose=None if purpose == NO_PURPOSE else purpose,
    )
    raise NotFound()


def record_refusal(
    hub: Core,
    session: Session,
    caller: Caller,
    *,
    action: str,
    shop_id: uuid.UUID | None,
    reason: str,
    category: str | None = None,
    purpose: str | None = None,
) -> None:
    """Commit a refusal to the audit log before the request fails."""
    with _tracer.start_as_current_span(
        "gate.audit", record_exception=False, set_status_on_exception=False
    ):
        hub.audit_writer.append(
            AuditDraft(
                action=action,
                decision=Decision.deny,
                reason=reason,
                principal_id=caller.id,
                principal_role=caller.role,
                shop_id=shop_id,
                category=category,
                purpose=purpose,
                policy_version=hub.authorizer.policy_version,
                # A refused read hands out nothing; say so, as an allowed read does.
                details={"records": 0} if action == "read" else {},
            ),
        )
