"""The verifiable log's API: checkpoints, entries with their leaf bytes, proofs, export, keys.

Auditors read all of it. A shopkeeper reads the checkpoint, the proofs and the
public key, and the entries about their own shops, so they can check for
themselves that every access to their shop is in the log the hub signed.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from audit import checkpoints, service, signing, tree
from audit.deps import AuditCoreDep, AuditProofRead, AuditRead, EntriesRead
from audit_verifier import merkle
from cornerstore.db import hold_snapshot
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import (
    GLOBAL_ERRORS,
    FieldError,
    NotFound,
    ValidationFailed,
    error_responses,
)
from cornerstore.models.audit import AuditEntry
from cornerstore.ports import Core

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Size = Annotated[int, Query(ge=0, le=2**62)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class LogEntryOut(BaseModel):
    index: int = Field(description="The entry's leaf index (its sequence number minus one)")
    entry: str = Field(
        description="Base64 of the entry's canonical bytes; its leaf hash is "
        "SHA-256(0x00 ‖ these bytes)"
    )
    leaf_hash: str = Field(description="Base64 of the leaf hash")


class LogEntriesOut(BaseModel):
    entries: list[LogEntryOut]
    next: str | None = Field(description="Pass as `after` for the next page, or null")


class InclusionProofOut(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str
    proof: list[str] = Field(description="Base64 hashes, in RFC 9162 §2.1.3.1 order")


class ConsistencyProofOut(BaseModel):
    old_size: int
    new_size: int
    proof: list[str] = Field(description="Base64 hashes, in RFC 9162 §2.1.4.1 order")


def _too_large(field: str, size: int) -> ValidationFailed:
    return ValidationFailed(
        "the log is not that large",
        [FieldError(field=f"query.{field}", reason=f"the log holds {size} entries")],
    )


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    summary="The newest signed checkpoint (C2SP tlog-checkpoint in a signed note)",
    responses=GLOBAL_ERRORS,
)
def checkpoint(permit: AuditProofRead, core: AuditCoreDep, session: DbSession) -> PlainTextResponse:
    # The background signer keeps up within a quarter second; signing here too
    # means the answer covers every entry committed before the request.
    checkpoints.sign_latest(session, core.signer.current())
    newest = checkpoints.latest(session)
    assert newest is not None
    return PlainTextResponse(newest.note, media_type="text/plain; charset=utf-8")


@router.get(
    "/entries",
    response_model=LogEntriesOut,
    summary="Entries with their leaf index and canonical bytes",
    description="Auditors may list any entries; a shopkeeper must name one of their shops.",
    responses=GLOBAL_ERRORS | error_responses(NotFound),
)
def entries(
    permit: EntriesRead,
    session: DbSession,
    shop_id: uuid.UUID | None = None,
    after: Annotated[int, Query(ge=-1, le=2**62, description="A leaf index")] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LogEntriesOut:
    stmt = select(AuditEntry).where(AuditEntry.seq > after + 1).order_by(AuditEntry.seq)
    if shop_id is not None:
        stmt = stmt.where(AuditEntry.shop_id == shop_id)
    rows = session.scalars(stmt.limit(limit)).all()
    out = []
    for row in rows:
        encoded = service.encoded(row)
        out.append(
            LogEntryOut(
                index=row.seq - 1, entry=b64(encoded), leaf_hash=b64(merkle.leaf_hash(encoded))
            )
        )
    return LogEntriesOut(entries=out, next=str(out[-1].index) if len(out) == limit else None)


@router.get(
    "/proofs/inclusion",
    response_model=InclusionProofOut,
    summary="Proof that the entry at `index` is in the tree of `tree_size` entries",
    responses=GLOBAL_ERRORS,
)
def inclusion_proof(
    permit: AuditProofRead, session: DbSession, index: Size, tree_size: Size
) -> InclusionProofOut:
    size = service.head_seq(session)
    if tree_size > size:
        raise _too_large("tree_size", size)
    if index >= tree_size:
        raise ValidationFailed(
            "the index is outside that tree",
            [FieldError(field="query.index", reason="must be less than tree_size")],
        )
    leaf, proof = tree.inclusion_proof_with_leaf(session, index, tree_size)
    return InclusionProofOut(
        index=index, tree_size=tree_size, leaf_hash=b64(leaf), proof=[b64(h) for h in proof]
    )


@router.get(
    "/proofs/consistency",
    response_model=ConsistencyProofOut,
    summary="Proof that the tree of `new_size` entries extends the tree of `old_size`",
    responses=GLOBAL_ERRORS,
)
def consistency_proof(
    permit: AuditProofRead, session: DbSession, old_size: Size, new_size: Size
) -> ConsistencyProofOut:
    size = service.head_seq(session)
    if new_size > size:
        raise _too_large("new_size", size)
    if old_size > new_size:
        raise ValidationFailed(
            "a tree cannot shrink",
            [FieldError(field="query.old_size", reason="must not exceed new_size")],
        )
    proof = merkle.consistency_proof(old_size, new_size, tree.node_getter(session))
    return ConsistencyProofOut(old_size=old_size, new_size=new_size, proof=[b64(h) for h in proof])


@router.get(
    "/export",
    response_class=StreamingResponse,
    summary="Every entry, as JSON Lines: its leaf index and canonical bytes (base64)",
    responses={
        **GLOBAL_ERRORS,
        200: {"content": {"application/x-ndjson": {}}, "description": "One entry per line"},
    },
)
def export(permit: AuditRead, core: CoreDep) -> StreamingResponse:
    return StreamingResponse(_export_lines(core), media_type="application/x-ndjson")


def _export_lines(hub: Core, batch: int = 5000) -> Iterator[bytes]:
    with hub.sessions() as session:
        hold_snapshot(session)
        size = service.head_seq(session)
        after = 0
        while after < size:
            rows = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq > after, AuditEntry.seq <= size)
                .order_by(AuditEntry.seq)
                .limit(batch)
            ).all()
            if not rows:
                return
            lines = []
            for row in rows:
                encoded = service.encoded(row)
                # Only the signed bytes: decoded fields beside them could say
                # something else than what the checkpoint covers.
                doc = {"index": row.seq - 1, "entry": b64(encoded)}
                lines.append(json.dumps(doc, separators=(",", ":")) + "\n")
            yield "".join(lines).encode()
            after = rows[-1].seq
            session.expunge_all()


@router.get(
    "/public-key",
    response_class=PlainTextResponse,
    summary="The checkpoint verifier keys (signed-note format), the current one first",
    description="Public: anyone may verify checkpoints offline with these keys.",
)
def public_key(session: DbSession) -> PlainTextResponse:
    return PlainTextResponse(
        "".join(f"{key}\n" for key in signing.verifier_keys(session)),
        media_type="text/plain; charset=utf-8",
    )
