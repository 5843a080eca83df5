"""What the console needs of the running hub beyond the core: a shop's name, and erasure.

Erasure lives with the shops, in the layer above the console; the hub hands it
down through this protocol, so that the page and ``POST /v1/shops/{id}/erasure``
run the same code and the arrows still point down.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from cornerstore.deps import hub_of
from cornerstore.identity import Caller
from cornerstore.ports import Core


@dataclass(frozen=True)
class Erased:
    """What an erasure did: rows deleted, consents ended, and whether the keys are gone yet."""

    records_deleted: int
    consents_ended: int
    keys_destroyed: bool


class ConsoleCore(Core, Protocol):
    def shop_name(self, session: Session, shop_id: uuid.UUID) -> str | None: ...

    def erase_shop(
        self, session: Session, shop_id: uuid.UUID, *, by: Caller, policy_version: str
    ) -> Erased | None:
        """Erase as ``POST /v1/shops/{id}/erasure`` does (commits); None if no such shop."""
        ...


def get_console_core(request: Request) -> ConsoleCore:
    core: ConsoleCore = hub_of(request)
    return core


ConsoleCoreDep = Annotated[ConsoleCore, Depends(get_console_core)]
