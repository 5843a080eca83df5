"""Each auditor's witness of the log: the newest checkpoint it was shown, and a proof
that the next one it is shown extends it.

An auditor who saw a checkpoint of size ``m`` and is now shown one of size
``n`` must not have to trust the hub that entries ``1..m`` are unchanged: the
hub proves it (RFC 9162 consistency proof) and checks the proof itself before
it shows the answer, and the auditor can check the same proof offline with
``audit_verifier``. The checkpoint just shown becomes the one the next visit
is checked against.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from audit import tree
from audit_verifier import merkle
from cornerstore.models.audit import AuditCheckpoint, AuditorCheckpoint


@dataclass(frozen=True)
class Consistency:
    """How the checkpoint shown now relates to the one this auditor saw before."""

    previous_size: int | None
    previous_root: bytes | None
    size: int
    proof: list[bytes]
    #: None when there was nothing to compare with (the auditor's first visit).
    consistent: bool | None
    problem: str | None = None


def witness(
    session: Session, auditor_id: uuid.UUID, shown: AuditCheckpoint, now: datetime
) -> Consistency:
    seen = session.get(AuditorCheckpoint, auditor_id, with_for_update=True)
    if seen is None:
        session.add(
            AuditorCheckpoint(
                principal_id=auditor_id, size=shown.size, root_hash=shown.root_hash, seen_at=now
            )
        )
        return Consistency(None, None, shown.size, [], None)
    if seen.size > shown.size:
        # A smaller tree than one already seen: the log lost entries, or forked.
        return Consistency(
            seen.size, seen.root_hash, shown.size, [], False, "the log is smaller than before"
        )
    proof = merkle.consistency_proof(seen.size, shown.size, tree.node_getter(session))
    try:
        merkle.verify_consistency(seen.size, shown.size, seen.root_hash, shown.root_hash, proof)
    except merkle.ProofError as exc:
        return Consistency(seen.size, seen.root_hash, shown.size, proof, False, str(exc))
    result = Consistency(seen.size, seen.root_hash, shown.size, proof, True)
    seen.size, seen.root_hash, seen.seen_at = shown.size, shown.root_hash, now
    return result
