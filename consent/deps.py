"""What consent's endpoints and background recorder need of the running hub."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from consent import receipts
from cornerstore.deps import hub_of
from cornerstore.ports import Core


class ConsentCore(Core, Protocol):
    @property
    def receipt_signer(self) -> receipts.ReceiptSigner: ...


def get_consent_core(request: Request) -> ConsentCore:
    core: ConsentCore = hub_of(request)
    return core


ConsentCoreDep = Annotated[ConsentCore, Depends(get_consent_core)]
