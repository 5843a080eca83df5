"""What the console needs of the running hub beyond the core: a shop's details, and erasure.

Shops live in the layer above the console; the hub hands their services down
through this protocol, so that a page and its API endpoint (``PATCH
/v1/shops/{id}``, ``POST /v1/shops/{id}/erasure``) run the same code and the
arrows still point down.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from cornerstore.deps import DbSession, hub_of
from cornerstore.identity import Caller
from cornerstore.ports import Core


@dataclass(frozen=True)
class Erased:
    """What an erasure did: rows deleted, consents ended, and whether the keys are gone yet."""

    records_deleted: int
    consents_ended: int
    keys_destroyed: bool


@dataclass(frozen=True)
class ShopFacts:
    name: str
    #: An IANA name, or None: the portal then shows UTC, and says so.
    time_zone: str | None


class ConsoleCore(Core, Protocol):
    def shop(self, session: Session, shop_id: uuid.UUID) -> ShopFacts | None: ...

    def set_shop_time_zone(
        self,
        session: Session,
        shop_id: uuid.UUID,
        time_zone: str | None,
        *,
        by: Caller,
        policy_version: str,
    ) -> bool:
        """Change it as ``PATCH /v1/shops/{id}`` does (flushes); False if no such shop."""
        ...

    def erase_shop(
        self, session: Session, shop_id: uuid.UUID, *, by: Caller, policy_version: str
    ) -> Erased | None:
        """Erase as ``POST /v1/shops/{id}/erasure`` does (commits); None if no such shop."""
        ...


def get_console_core(request: Request) -> ConsoleCore:
    core: ConsoleCore = hub_of(request)
    return core


ConsoleCoreDep = Annotated[ConsoleCore, Depends(get_console_core)]


def shop_time_zone(shop_id: uuid.UUID, core: ConsoleCoreDep, session: DbSession) -> str | None:
    """The zone a shop page shows times in. Declared after the page's permit, so it runs after."""
    facts = core.shop(session, shop_id)
    return facts.time_zone if facts else None


ShopTimeZone = Annotated[str | None, Depends(shop_time_zone)]
