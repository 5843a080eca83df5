"""The process-wide parts of a running hub, built once and kept on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cornerstore.authz import Authorizer
from cornerstore.crypto import load_master_key
from cornerstore.db import make_engine, make_sessionmaker
from cornerstore.migrations import assert_migrated, database_has_shop_keys
from cornerstore.settings import Settings
from cornerstore.shops.keys import KeyRing


@dataclass(frozen=True)
class Hub:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    authorizer: Authorizer
    keyring: KeyRing

    @classmethod
    def open(cls, settings: Settings, *, engine: Engine | None = None) -> Hub:
        """Connect, check migrations, load policy and keys, or refuse with a reason."""
        engine = engine or make_engine(settings.sqlalchemy_url)
        assert_migrated(engine)
        master_key = load_master_key(
            settings.master_key_path, create=not database_has_shop_keys(engine)
        )
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            authorizer=Authorizer(settings.policy_dir),
            keyring=KeyRing(master_key),
        )

    def close(self) -> None:
        self.engine.dispose()
