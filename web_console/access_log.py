"""The portal's "who read my data": the shop's access log in plain words, each entry
checked against the signed log.

For each entry shown, the server recomputes its leaf hash from the stored entry,
fetches its inclusion proof in the newest signed checkpoint and checks the two
against the checkpoint's root. A verified mark links to the raw proof, so a
technical friend can check it independently with ``audit_verifier``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from analytics.deps import ShopLedgerRead
from analytics.service import shop_privacy
from audit import checkpoints, service, tree
from audit.deps import AccessLogRead, AuditCoreDep
from audit_verifier import merkle
from consent import service as consents
from cornerstore.authz import AuditedPurpose
from cornerstore.db import utcnow
from cornerstore.deps import DbSession
from cornerstore.identity import names_of
from cornerstore.models.audit import AuditCheckpoint, AuditEntry
from cornerstore.ports import Decision
from web_console import words
from web_console.forms import own_shop, query_filters
from web_console.ports import ShopTimeZone
from web_console.templating import render

router = APIRouter(prefix="/portal/shops/{shop_id}", include_in_schema=False)

PAGE = 50


@dataclass(frozen=True)
class Shown:
    entry: AuditEntry
    who: str | None
    verified: bool
    proof_url: str | None


def _verified(
    session: Session, entries: list[AuditEntry], checkpoint: AuditCheckpoint | None
) -> set[int]:
    """The sequence numbers of the entries whose leaf and proof match the checkpoint's root."""
    if checkpoint is None:
        return set()
    signed = [entry for entry in entries if entry.seq - 1 < checkpoint.size]
    proofs = tree.inclusion_proofs_with_leaves(
        session, [entry.seq - 1 for entry in signed], checkpoint.size
    )
    verified: set[int] = set()
    for entry in signed:
        index = entry.seq - 1
        computed = merkle.leaf_hash(service.encoded(entry))
        stored, proof = proofs[index]
        if stored != computed:
            continue
        try:
            merkle.verify_inclusion(index, checkpoint.size, computed, proof, checkpoint.root_hash)
        except merkle.ProofError:
            continue
        verified.add(entry.seq)
    return verified


class _Filters(BaseModel):
    """The page's filters; an empty choice means any."""

    consumer: uuid.UUID | None = None
    purpose: AuditedPurpose | None = None
    outcome: Decision | None = None


@router.get("/access-log")
def access_log_page(
    request: Request,
    shop_id: uuid.UUID,
    permit: AccessLogRead,
    core: AuditCoreDep,
    session: DbSession,
    time_zone: ShopTimeZone,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    own_shop(permit, shop_id)
    chosen = query_filters(_Filters, request)
    # Sign now, as GET /v1/audit/checkpoint does: every entry shown is in it.
    checkpoints.sign_latest(session, core.signer.current())
    newest = checkpoints.latest(session)
    where = service.AuditFilter(
        shop_id=shop_id,
        principal_id=chosen.consumer,
        purpose=chosen.purpose,
        decision=chosen.outcome,
    )
    entries = service.query(session, where, after_seq=0, limit=PAGE, before_seq=before or 2**62)
    names = names_of(session, {e.principal_id for e in entries if e.principal_id})
    verified = _verified(session, entries, newest)
    shown = []
    for entry in entries:
        ok = entry.seq in verified
        proof = (
            f"/v1/audit/proofs/inclusion?index={entry.seq - 1}&tree_size={newest.size}"
            if ok and newest
            else None
        )
        who = names.get(entry.principal_id) if entry.principal_id else None
        shown.append(Shown(entry, who, ok, proof))
    given = consents.list_for_shop(session, shop_id, utcnow())
    return render(
        request,
        "portal/access_log.html",
        time_zone=time_zone,
        shop_id=shop_id,
        section="access-log",
        shown=shown,
        consumers=sorted({(c.consumer_id, c.consumer_name) for c in given}, key=lambda c: c[1]),
        purposes=core.authorizer.purposes,
        chosen=chosen,
        older=entries[-1].seq if len(entries) == PAGE else None,
        words=words,
    )


@router.get("/privacy-spent")
def privacy_spent(
    request: Request, shop_id: uuid.UUID, permit: ShopLedgerRead, session: DbSession
) -> Response:
    """How much privacy budget totals across shops have spent on this shop: the API's figure."""
    own_shop(permit, shop_id)
    spent, queries = shop_privacy(session, shop_id)
    return render(request, "portal/_privacy_spent.html", spent=spent, queries=queries)
