"""Signed checkpoints: the tree's size and root, signed, at least every ``interval`` seconds.

A checkpointer thread runs in every API process. Each round it reads the
head (size and frontier, one row, so always consistent), and if the tree grew
since the newest stored checkpoint it signs a new one. Processes racing to
sign the same size are harmless: the size is the key, the first one stays.
"""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from audit import service, signing, tree
from audit_verifier import note
from cornerstore.db import utcnow
from cornerstore.models.audit import AuditCheckpoint, AuditHead
from cornerstore.poller import Poller


def latest(session: Session) -> AuditCheckpoint | None:
    return session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)
    ).first()


def sign_latest(session: Session, signer: note.Signer) -> int:
    """Sign the tree as it is now, unless a checkpoint of this size exists; return the size.

    Commits ``session``: call it with nothing else pending.
    """
    size, frontier = session.execute(
        select(AuditHead.seq, AuditHead.frontier).where(AuditHead.id == service.HEAD_ID)
    ).one()
    newest = session.scalar(select(func.max(AuditCheckpoint.size)))
    if newest is not None and newest >= size:
        return int(newest)
    root = tree.root_of_frontier(frontier)
    body = note.Checkpoint(signer.name, size, root).format()
    session.add(
        AuditCheckpoint(
            size=size, root_hash=root, note=signer.sign(body).decode(), created_at=utcnow()
        )
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # Another process signed this size first.
    return int(size)


def checkpointer(
    sessions: sessionmaker[Session], signer: signing.SignerSource, *, interval: float
) -> Poller:
    """Signs a checkpoint whenever the tree grew, every ``interval`` seconds."""

    def sign(_stopping: threading.Event) -> None:
        with sessions() as session:
            sign_latest(session, signer.current())

    return Poller("checkpointer", sign, interval=interval)
