"""The checkpoint-signing keys: Ed25519 seeds in a private file, public keys in the database.

The key file holds one or more 32-byte Ed25519 seeds back to back; the last
is the one that signs. Rotating appends a new seed. Every public key that
ever signed is kept in ``audit_signing_keys`` and published, so checkpoints
signed before a rotation still verify.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit_verifier import note
from cornerstore.db import utcnow
from cornerstore.keys import seeds
from cornerstore.models.audit import AuditSigningKey

KEY_FILE = "audit signing key"


def load_signer(path: Path, origin: str) -> note.Signer:
    """The signer of new checkpoints, made (mode 0600) on first use."""
    return note.Signer(origin, seeds.current(path, KEY_FILE))


def rotate(path: Path, origin: str) -> note.Signer:
    """Append a new signing key; the old ones stay in the file only as long as you keep them."""
    seeds.rotate(path, KEY_FILE)
    return load_signer(path, origin)


def publish(session: Session, signer: note.Signer) -> None:
    """Record ``signer``'s public key (idempotent); any other current key is retired."""
    key_id = signer.key_id.hex()
    if session.get(AuditSigningKey, key_id) is None:
        session.add(
            AuditSigningKey(key_id=key_id, verifier_key=signer.verifier_key, created_at=utcnow())
        )
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            return
    session.execute(
        update(AuditSigningKey)
        .where(AuditSigningKey.key_id != key_id, AuditSigningKey.retired_at.is_(None))
        .values(retired_at=utcnow())
    )


def verifier_keys(session: Session) -> list[str]:
    """Every published verifier key, the current one first."""
    rows = session.scalars(
        select(AuditSigningKey).order_by(
            AuditSigningKey.retired_at.is_not(None), AuditSigningKey.created_at.desc()
        )
    ).all()
    return [row.verifier_key for row in rows]


class SignerSource:
    """This process's checkpoint signer, following the key file when it is rotated.

    ``cornerstore audit rotate-signing-key`` appends a key to the file; every
    running process signs with it from its next checkpoint on, no restart.
    """

    def __init__(self, path: Path, origin: str) -> None:
        self._path = path
        self._origin = origin
        self._signer = load_signer(path, origin)
        self._stamp = seeds.stamp(self._path)
        self._lock = threading.Lock()

    def current(self) -> note.Signer:
        stamp = seeds.stamp(self._path)
        with self._lock:
            if stamp != self._stamp:
                self._signer, self._stamp = load_signer(self._path, self._origin), stamp
            return self._signer
