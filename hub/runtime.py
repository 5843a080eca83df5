"""The process-wide parts of a running hub, built once and kept on ``app.state``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from analytics import catalogue as analytics_catalogue
from analytics.cache import RollupCache
from analytics.deps import AnalyticsCore
from audit import signing
from audit.deps import AuditCore
from audit.writer import AuditWriter
from consent import receipts
from consent.deps import ConsentCore
from consent.enforcement import ConsentEnforcer
from cornerstore.authz import Authorizer
from cornerstore.db import make_engine, make_sessionmaker
from cornerstore.identity import Caller
from cornerstore.keys.bootstrap import open_keyring
from cornerstore.keys.ring import KeyRing
from cornerstore.migrations import assert_migrated
from cornerstore.ratelimit import RateLimiter
from cornerstore.settings import Settings
from hub.shops import erasure
from hub.shops import service as shops
from hub.shops.schemas import ShopChange
from web_console.ports import ConsoleCore, Erased, ShopFacts


@dataclass(frozen=True)
class Hub:
    """Every part of the running hub; each layer sees it through the protocol of what it uses."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    authorizer: Authorizer
    keyring: KeyRing
    audit_writer: AuditWriter
    signer: signing.SignerSource
    receipt_signer: receipts.ReceiptSigner
    consent_check: ConsentEnforcer
    rate_limiter: RateLimiter
    #: Shops' opened sales rollups, in this process's memory only.
    rollup_cache: RollupCache

    @classmethod
    def open(cls, settings: Settings, *, engine: Engine | None = None) -> Hub:
        """Connect, check migrations, load policy and keys, or refuse with a reason."""
        engine = engine or make_engine(settings.sqlalchemy_url)
        assert_migrated(engine)
        authorizer = Authorizer(settings.policy_dir)
        # A malformed analytics catalogue stops the hub here, not at the first query.
        analytics_catalogue.load(settings.policy_dir)
        keyring = open_keyring(settings, engine)
        sessions = make_sessionmaker(engine)
        # An erasure interrupted between deleting rows and destroying the key ends now.
        erasure.finish_pending(sessions, keyring)
        signer = signing.SignerSource(settings.audit_signing_key_path, settings.audit_log_origin)
        with sessions() as session:
            # Published before anything is signed with it, so every checkpoint verifies.
            signing.publish(session, signer.current())
            session.commit()
        receipt_signer = receipts.ReceiptSigner(settings.receipt_signing_key_path)
        with sessions() as session:
            # Likewise for consent receipts: each verifies with the published JWKS.
            receipts.publish(session, receipt_signer)
            session.commit()
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            authorizer=authorizer,
            keyring=keyring,
            audit_writer=AuditWriter(sessions),
            signer=signer,
            receipt_signer=receipt_signer,
            consent_check=ConsentEnforcer(engine.url.render_as_string(hide_password=False)),
            rate_limiter=RateLimiter(engine.url.render_as_string(hide_password=False)),
            rollup_cache=RollupCache(),
        )

    def shop(self, session: Session, shop_id: uuid.UUID) -> ShopFacts | None:
        found = shops.get(session, shop_id)
        return ShopFacts(found.name, found.time_zone) if found else None

    def set_shop_time_zone(
        self,
        session: Session,
        shop_id: uuid.UUID,
        time_zone: str | None,
        *,
        by: Caller,
        policy_version: str,
    ) -> bool:
        """For the web console: the change ``PATCH /v1/shops/{id}`` makes."""
        changed = shops.change(
            session,
            shop_id,
            ShopChange(time_zone=time_zone),
            by=by,
            policy_version=policy_version,
        )
        return changed is not None

    def erase_shop(
        self, session: Session, shop_id: uuid.UUID, *, by: Caller, policy_version: str
    ) -> Erased | None:
        """For the web console: the erasure ``POST /v1/shops/{id}/erasure`` runs."""
        outcome = erasure.erase(
            session, self.sessions, self.keyring, shop_id, by=by, policy_version=policy_version
        )
        if outcome is None:
            return None
        erased, destroyed = outcome
        return Erased(
            records_deleted=sum(erased.records_deleted.values()),
            consents_ended=len(erased.consents_ended),
            keys_destroyed=destroyed,
        )

    def close(self) -> None:
        self.audit_writer.close()
        self.consent_check.close()
        self.rate_limiter.close()
        self.keyring.provider.close()
        self.engine.dispose()


if TYPE_CHECKING:
    # The layers below see the hub as the protocols of the parts they use
    # (``cornerstore.ports.Core`` and its extensions); mypy checks here that
    # the hub is each of them.
    def _is_every_core(hub: Hub) -> tuple[AuditCore, ConsentCore, AnalyticsCore, ConsoleCore]:
        return hub, hub, hub, hub
