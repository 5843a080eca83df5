"""What the audit log's endpoints need: the hub's signer, and the permits they declare."""

from __future__ import annotations

import uuid
from typing import Annotated, Protocol

from fastapi import BackgroundTasks, Depends, Request
from sqlalchemy.orm import Session

from audit import signing, verification
from cornerstore.access import Authorize, AuthorizeShop, Permit, authorize
from cornerstore.authz import Action, Resource
from cornerstore.deps import CoreDep, CurrentCaller, hub_of
from cornerstore.models.principals import Role
from cornerstore.ports import Core


class AuditCore(Core, Protocol):
    @property
    def signer(self) -> signing.SignerSource: ...


def get_audit_core(request: Request) -> AuditCore:
    core: AuditCore = hub_of(request)
    return core


AuditCoreDep = Annotated[AuditCore, Depends(get_audit_core)]


AuditRead = Annotated[Permit, Depends(Authorize(Resource.audit, Action.read))]
#: Checkpoints and proofs name no shop: auditors and shopkeepers may read them.
AuditProofRead = Annotated[Permit, Depends(Authorize(Resource.audit_proof, Action.read))]
AccessLogRead = Annotated[Permit, Depends(AuthorizeShop(Resource.access_log, Action.read))]
VerificationStart = Annotated[
    Permit, Depends(Authorize(Resource.audit_verification, Action.create))
]
VerificationRead = Annotated[Permit, Depends(Authorize(Resource.audit_verification, Action.read))]


def start_verification(
    session: Session, core: Core, permit: Permit, background: BackgroundTasks
) -> verification.Run:
    """Start the full verification, or join the one working, for the console and the API alike.

    A new run's thread starts once the request's transaction has committed
    its row (background tasks run after the response is ready).
    """
    run, new = verification.start(session, permit.caller.id)
    if new:
        background.add_task(verification.launch, core.sessions, run.id)
    return run


def authorize_entries(
    core: CoreDep, caller: CurrentCaller, shop_id: uuid.UUID | None = None
) -> Permit:
    """Auditors may list any entries; anyone else only a shop's, under its access-log rule."""
    if shop_id is not None and caller.role != Role.auditor:
        return authorize(
            core, caller, resource=Resource.access_log, action=Action.read, shop_id=shop_id
        )
    return authorize(core, caller, resource=Resource.audit, action=Action.read)


EntriesRead = Annotated[Permit, Depends(authorize_entries)]
