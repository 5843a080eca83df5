"""Authorization, declared in each endpoint's signature: Casbin decides, refusals are audited.

An endpoint names what it needs as a typed dependency, Polar-style::

    ConsentWrite = Annotated[Permit, Depends(AuthorizeShop(Resource.consent, Action.write))]

    def revoke(permit: ConsentWrite, ...) -> ...: ...

so the signature (and the OpenAPI it generates) says who may call it, and the
:class:`Permit` is what the endpoint works with. The dependency runs before
the request body is validated and before anything is written, so a refusal
answers the same whatever the body held. The data-read gate
(:mod:`cornerstore.gate`) decides through :func:`authorize` as well: there is
one place where a caller's relation to a shop is derived and one place where a
refusal becomes an answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from opentelemetry import trace

from cornerstore.authz import Action, DecisionRequest, PurposeName, Relation, Resource
from cornerstore.categories import Category
from cornerstore.db import utcnow
from cornerstore.deps import CoreDep, CurrentCaller, DbSession
from cornerstore.errors import Forbidden, NotFound
from cornerstore.identity import Caller, keeps_principal
from cornerstore.ports import AuditDraft, Core, Decision
from cornerstore.ratelimit import MINUTE

_tracer = trace.get_tracer("cornerstore.access")


@dataclass(frozen=True, slots=True)
class Permit:
    """Proof that Casbin allowed ``caller`` to do ``action`` on ``resource``."""

    caller: Caller
    shop_id: uuid.UUID | None
    resource: Resource | Category
    action: Action
    purpose: PurposeName | None
    relation: Relation
    policy_version: str

    @property
    def shop(self) -> uuid.UUID:
        """The shop a shop-scoped permit is about (:class:`AuthorizeShop`, the gate's reads)."""
        if self.shop_id is None:
            raise TypeError("this permit is about no shop")
        return self.shop_id

    @property
    def category(self) -> Category:
        """The data category a permit to read or write shop data is about."""
        if not isinstance(self.resource, Category):
            raise TypeError("this permit is about no data category")
        return self.resource


def relation_of(caller: Caller, shop_id: uuid.UUID | None) -> Relation:
    return Relation.own if shop_id is not None and shop_id in caller.shop_ids else Relation.other


def authorize(
    core: Core,
    caller: Caller,
    *,
    resource: Resource | Category,
    action: Action,
    shop_id: uuid.UUID | None = None,
    purpose: PurposeName | None = None,
) -> Permit:
    """Allow, or raise. About a shop, a refusal is a 404 (the shop's existence
    stays hidden) and is committed to the audit log first; otherwise it is a 403.
    """
    relation = relation_of(caller, shop_id)
    request = DecisionRequest(caller.role, relation, resource, action, purpose)
    with _tracer.start_as_current_span(
        "gate.authorize", record_exception=False, set_status_on_exception=False
    ) as span:
        allowed = core.authorizer.decide(request)
        span.set_attribute("cornerstore.decision", "allow" if allowed else "deny")
        span.set_attribute("cornerstore.policy_version", core.authorizer.policy_version)
    if allowed:
        return Permit(
            caller, shop_id, resource, action, purpose, relation, core.authorizer.policy_version
        )
    if shop_id is None:
        raise Forbidden()
    is_data = isinstance(resource, Category)
    record_refusal(
        core,
        caller,
        action=(
            ("read" if action is Action.read else "ingest") if is_data else f"{resource}.{action}"
        ),
        shop_id=shop_id,
        reason="policy",
        category=resource.value if is_data else None,
        purpose=purpose.value if purpose else None,
    )
    raise NotFound()


def record_refusal(
    core: Core,
    caller: Caller,
    *,
    action: str,
    shop_id: uuid.UUID | None,
    reason: str,
    category: str | None = None,
    purpose: str | None = None,
) -> None:
    """Commit a refusal to the audit log before the request fails.

    Refusals are counted per principal too: one that keeps probing shops is
    answered 429 (the refusal still recorded) until its window ends.
    """
    with _tracer.start_as_current_span(
        "gate.audit", record_exception=False, set_status_on_exception=False
    ):
        core.audit_writer.append(
            AuditDraft.of(
                caller,
                action,
                reason,
                decision=Decision.deny,
                shop_id=shop_id,
                category=category,
                purpose=purpose,
                policy_version=core.authorizer.policy_version,
                # A refused read hands out nothing; say so, as an allowed read does.
                details={"records": 0} if action == "read" else {},
            ),
        )
    core.rate_limiter.hit(
        f"refusals:{caller.id}", core.settings.rate_refusals_per_minute, MINUTE, utcnow()
    )


class Authorize:
    """A dependency for endpoints about no one shop: allowed, or 403."""

    def __init__(self, resource: Resource | Category, action: Action) -> None:
        self.resource = resource
        self.action = action

    def __call__(self, core: CoreDep, caller: CurrentCaller) -> Permit:
        return authorize(core, caller, resource=self.resource, action=self.action)


class AuthorizePrincipal:
    """A dependency for endpoints under ``/v1/principals/{principal_id}``.

    The caller's relation is ``own`` for its own principal and, for a
    shopkeeper, its shops' connectors. A refusal is a 404, so that no one
    learns which principals exist.
    """

    def __init__(self, resource: Resource, action: Action) -> None:
        self.resource = resource
        self.action = action

    def __call__(
        self, principal_id: uuid.UUID, core: CoreDep, caller: CurrentCaller, session: DbSession
    ) -> Permit:
        relation = (
            Relation.own if keeps_principal(session, caller, principal_id) else Relation.other
        )
        request = DecisionRequest(caller.role, relation, self.resource, self.action)
        if not core.authorizer.decide(request):
            raise NotFound()
        return Permit(
            caller, None, self.resource, self.action, None, relation, core.authorizer.policy_version
        )


class AuthorizeShop:
    """A dependency for endpoints under ``/v1/shops/{shop_id}``: allowed, or an audited 404."""

    def __init__(self, resource: Resource | Category, action: Action) -> None:
        self.resource = resource
        self.action = action

    def __call__(self, shop_id: uuid.UUID, core: CoreDep, caller: CurrentCaller) -> Permit:
        return authorize(core, caller, resource=self.resource, action=self.action, shop_id=shop_id)
