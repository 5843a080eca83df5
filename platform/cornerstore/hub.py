"""The process-wide parts of a running hub, built once and kept on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cornerstore.authz import Authorizer
from cornerstore.crypto import KeyMaterialError, load_master_key
from cornerstore.db import make_engine, make_sessionmaker
from cornerstore.migrations import assert_migrated, wrapping_master_key_ids
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
        stored_ids = wrapping_master_key_ids(engine)
        master_key = load_master_key(settings.master_key_path, create=not stored_ids)
        if stored_ids and master_key.fingerprint not in stored_ids:
            raise KeyMaterialError(
                f"master key file {settings.master_key_path} is not the key the stored data "
                "keys were wrapped with; restore the right key file from your backup"
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
