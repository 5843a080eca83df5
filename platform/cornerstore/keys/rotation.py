"""Key rotation while the API keeps serving.

* **Master key.** A new master key becomes active for new data keys at once;
  then every stored data key is re-wrapped under it, batch by batch, each
  batch its own transaction. Only the outer wrapping changes: no record is
  re-encrypted. The state lives in the database (the old key is ``retiring``),
  so a rotation that was killed resumes where it stopped when run again. When
  no data key depends on the old key any more, it is destroyed.
* **Shop data key.** A new version serves new writes; old records stay
  readable under their version. Re-encryption moves old records to the new
  version in batches; the old versions stay, so a write that raced the
  rotation under one is never lost.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from cornerstore.crypto import KeyMaterialError
from cornerstore.keys.ring import KeyRing
from cornerstore.models.keys import MasterKeyRecord, MasterKeyState, ShopKey
from cornerstore.records import repository

#: Called after each batch with (done, total).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class MasterRotation:
    retiring: frozenset[str]
    active: str
    resumed: bool


def begin_master_rotation(sessions: sessionmaker[Session], keyring: KeyRing) -> MasterRotation:
    """Make a new master key active, or return the rotation already under way."""
    with sessions() as session:
        retiring = frozenset(
            session.scalars(
                select(MasterKeyRecord.id).where(MasterKeyRecord.state == MasterKeyState.retiring)
            )
        )
        if retiring:
            return MasterRotation(retiring, keyring.active_master_id(session), resumed=True)
    new_id = keyring.provider.create_master()
    with sessions() as session:
        old_id = keyring.active_master_id(session)
        # This waits for every transaction that is wrapping a key under the old master.
        switched = session.execute(
            update(MasterKeyRecord)
            .where(MasterKeyRecord.id == old_id, MasterKeyRecord.state == MasterKeyState.active)
            .values(state=MasterKeyState.retiring)
        )
        if switched.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            keyring.provider.destroy_master(new_id)
            raise KeyMaterialError("another master-key rotation started at the same time")
        session.add(MasterKeyRecord(id=new_id, state=MasterKeyState.active))
        session.commit()
    return MasterRotation(frozenset({old_id}), new_id, resumed=False)


def remaining(session: Session, active: str) -> int:
    count = session.scalar(select(func.count()).where(ShopKey.master_key_id != active))
    return int(count or 0)


def rewrap_all(
    sessions: sessionmaker[Session],
    keyring: KeyRing,
    rotation: MasterRotation,
    *,
    batch_size: int = 500,
    pause: float = 0.0,
    progress: Progress | None = None,
) -> int:
    """Re-wrap every data key not yet under the active master key; return how many."""
    with sessions() as session:
        total = remaining(session, rotation.active)
    done, after = 0, None
    while True:
        # A keyset walk over the primary key: each batch starts where the last
        # ended, so a rotation costs the same per key at any progress. No data
        # key can appear behind the cursor under an old master key: the switch
        # to the new one waited for every wrapping transaction to finish.
        with sessions() as session:
            stmt = select(ShopKey).where(ShopKey.master_key_id != rotation.active)
            if after is not None:
                stmt = stmt.where(tuple_(ShopKey.shop_id, ShopKey.version) > tuple_(*after))
            rows = session.scalars(
                stmt.order_by(ShopKey.shop_id, ShopKey.version).limit(batch_size).with_for_update()
            ).all()
            for row in rows:
                keyring.rewrap(row, rotation.active)
            if rows:
                after = (rows[-1].shop_id, rows[-1].version)
            session.commit()
        done += len(rows)
        if progress is not None:
            progress(done, max(total, done))
        if len(rows) < batch_size:
            return done
        if pause:
            time.sleep(pause)


def finish_master_rotation(
    sessions: sessionmaker[Session], keyring: KeyRing, rotation: MasterRotation
) -> None:
    """Destroy the retired master keys once no data key depends on them."""
    with sessions() as session:
        left = remaining(session, rotation.active)
        if left:
            raise KeyMaterialError(f"{left} data keys still depend on the old master key")
        for old in rotation.retiring:
            session.execute(delete(MasterKeyRecord).where(MasterKeyRecord.id == old))
        session.commit()
    for old in rotation.retiring:
        if old in keyring.provider.master_ids():
            keyring.provider.destroy_master(old)


def rotate_master(
    sessions: sessionmaker[Session],
    keyring: KeyRing,
    *,
    batch_size: int = 500,
    pause: float = 0.0,
    progress: Progress | None = None,
) -> MasterRotation:
    rotation = begin_master_rotation(sessions, keyring)
    rewrap_all(sessions, keyring, rotation, batch_size=batch_size, pause=pause, progress=progress)
    finish_master_rotation(sessions, keyring, rotation)
    return rotation


# --- shop data keys ----------------------------------------------------------------------------


def rotate_shop(sessions: sessionmaker[Session], keyring: KeyRing, shop_id: uuid.UUID) -> int:
    """Start a new data-key version for the shop's new writes; return it."""
    with sessions() as session:
        cipher = keyring.start_new_version(session, shop_id)
        session.commit()
    return cipher.version


def reencrypt_shop(
    sessions: sessionmaker[Session],
    keyring: KeyRing,
    shop_id: uuid.UUID,
    *,
    batch_size: int = 500,
    settle: float = 0.0,
    progress: Progress | None = None,
) -> int:
    """Move the shop's records sealed under older versions to its newest; return how many.

    Other processes keep using the version they cached as current for a few
    seconds (:class:`KeyRing`); ``settle`` waits that long before the last
    pass. The old versions are kept, not destroyed: an upload that took its
    key before the rotation and commits after the last pass is sealed under
    one, and destroying it would lose records the connector was told were
    stored. (Erasing the shop destroys every version.)
    """
    with sessions() as session:
        target = keyring.cipher(session, shop_id).version
        total = repository.count_below_version(session, shop_id, target)
    started, done = time.monotonic(), 0
    while True:
        with sessions() as session:
            moved = repository.reseal_batch(
                session, shop_id, target, batch_size, _resealer(session, keyring, shop_id, target)
            )
            session.commit()
        done += moved
        if progress is not None:
            progress(done, max(total, done))
        if moved:
            continue
        wait = settle - (time.monotonic() - started)
        if wait > 0:
            time.sleep(wait)
            started = time.monotonic() - settle  # Wait only once.
            continue
        break
    keyring.forget(shop_id)
    return done


def _resealer(
    session: Session, keyring: KeyRing, shop_id: uuid.UUID, target: int
) -> repository.Resealer:
    new = keyring.cipher(session, shop_id, target)

    def reseal(kind: str, field: str, record_key: bytes, sealed: bytes, version: int) -> bytes:
        old = keyring.cipher(session, shop_id, version)
        return new.seal(kind, field, record_key, old.open(kind, field, record_key, sealed))

    return reseal
