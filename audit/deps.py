"""What the audit log's endpoints need of the running hub, beyond the core's parts."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from audit import signing
from cornerstore.deps import hub_of
from cornerstore.ports import Core


class AuditCore(Core, Protocol):
    @property
    def signer(self) -> signing.SignerSource: ...


def get_audit_core(request: Request) -> AuditCore:
    core: AuditCore = hub_of(request)
    return core


AuditCoreDep = Annotated[AuditCore, Depends(get_audit_core)]
