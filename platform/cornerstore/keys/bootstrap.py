"""Open the key ring at start, or refuse with a reason an operator can act on.

The rule is *refuse rather than lose*: once any data key is stored, the master
keys it depends on must be present. A missing or different key stops the hub
with a message naming what to restore; a new key is made only for a database
that holds no encrypted data yet.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cornerstore.crypto import KeyMaterialError
from cornerstore.keys.hsm import Pkcs11KeyProvider
from cornerstore.keys.localfile import LocalKeyProvider
from cornerstore.keys.provider import KeyProvider
from cornerstore.keys.ring import KeyRing
from cornerstore.models.keys import MasterKeyRecord, MasterKeyState, ShopKey
from cornerstore.settings import KeyProviderKind, Settings


def master_ids_in_use(session: Session) -> set[str]:
    """The master keys stored data keys depend on, and those the database names."""
    wrapping = set(session.scalars(select(ShopKey.master_key_id).distinct()))
    return wrapping | set(session.scalars(select(MasterKeyRecord.id)))


def legacy_key_count(session: Session) -> int:
    count = session.scalar(select(func.count()).where(ShopKey.wrap_format == 1))
    return int(count or 0)


def open_keyring(settings: Settings, engine: Engine, *, allow_legacy: bool = False) -> KeyRing:
    with Session(engine) as session:
        in_use = master_ids_in_use(session)
        provider = open_provider(settings, may_create_master=not in_use)
        try:
            _check_masters(session, provider, in_use)
            if not allow_legacy and (legacy := legacy_key_count(session)):
                raise KeyMaterialError(
                    f"{legacy} data keys were wrapped before shops had their own "
                    "key-encryption keys, so erasing those shops would not be final; "
                    "run: cornerstore keys rotate-master"
                )
        except BaseException:
            provider.close()
            raise
    return KeyRing(provider, cache_size=settings.key_cache_size, ttl=settings.key_cache_ttl_seconds)


def _check_masters(session: Session, provider: KeyProvider, in_use: set[str]) -> None:
    available = provider.master_ids()
    missing = in_use - available
    if missing:
        raise KeyMaterialError(
            f"the master key that wrapped the stored data keys ({', '.join(sorted(missing))}) "
            f"is not in {provider.describe()}: it is not the key these data were written "
            "with; restore the right key from your backup"
        )
    has_active = session.scalar(
        select(MasterKeyRecord.id).where(MasterKeyRecord.state == MasterKeyState.active)
    )
    if has_active is not None:
        return
    # A new database (or one from before master keys were recorded): name the
    # key in use, or the provider's only key.
    candidates = sorted(in_use) or sorted(available)
    if len(candidates) != 1:
        raise KeyMaterialError(
            f"cannot tell which master key is active among {', '.join(candidates)}; "
            f"keep only the right one in {provider.describe()}"
        )
    session.add(MasterKeyRecord(id=candidates[0], state=MasterKeyState.active))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # Another process recorded it first.


def open_provider(settings: Settings, *, may_create_master: bool) -> KeyProvider:
    """The provider the settings name.

    ``may_create_master`` is true only while no wrapped data key exists yet:
    a missing master key is then made, never once data depend on one.
    """
    if settings.key_provider is KeyProviderKind.pkcs11:
        return Pkcs11KeyProvider.from_settings(settings, may_create_master=may_create_master)
    return LocalKeyProvider(
        settings.master_key_path, settings.key_store_path, may_create_master=may_create_master
    )
