"""Proposals: a consumer proposes under a consent, the shopkeeper answers, the consumer hears.

A consumer may propose to a shop only under an active consent of that shop
for the proposal's purpose (an order under ``replenishment``, a credit line
under ``credit-assessment``); anything else is a 404, as for a shop that
does not exist. Content and answer are sealed with the shop's data key. A
proposal whose consent has ended since is shown as withdrawn and can no
longer be accepted. Every step is audited, and an answer reaches the
consumer as a ``proposal.answered`` webhook (the event names the proposal;
the consumer reads the answer through the hub).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit import service as audit
from consent import webhooks
from cornerstore.errors import Conflict, FieldError, NotFound, ValidationFailed
from cornerstore.identity import Caller
from cornerstore.keys.ring import KeyRing
from cornerstore.models.consent import Consent, ConsentStatus
from cornerstore.models.principals import Principal
from cornerstore.models.proposals import Proposal, ProposalKind, ProposalStatus
from cornerstore.ports import AuditDraft
from proposals.schemas import AnswerIn, CreditOfferIn, ProposalOut, PurchaseOrderIn

#: The purpose each kind of proposal is made under.
PURPOSE_OF = {
    ProposalKind.purchase_order: "replenishment",
    ProposalKind.credit_offer: "credit-assessment",
}
KIND = "proposal"
ANSWERED_EVENT = "proposal.answered"


def _live_consent(
    session: Session, shop_id: uuid.UUID, consumer_id: uuid.UUID, purpose: str, now: datetime
) -> Consent | None:
    return session.scalars(
        select(Consent)
        .where(
            Consent.shop_id == shop_id,
            Consent.consumer_id == consumer_id,
            Consent.purpose == purpose,
            Consent.status == ConsentStatus.active,
            Consent.valid_from <= now,
            Consent.expires_at > now,
        )
        .limit(1)
    ).first()


def _seal(keyring: KeyRing, session: Session, proposal: Proposal, field: str, value: Any) -> bytes:
    cipher = keyring.cipher(session, proposal.shop_id, proposal.key_version)
    return cipher.seal(KIND, field, proposal.id.bytes, json.dumps(value).encode())


def _open(keyring: KeyRing, session: Session, proposal: Proposal, field: str, sealed: bytes) -> Any:
    cipher = keyring.cipher(session, proposal.shop_id, proposal.key_version)
    return json.loads(cipher.open(KIND, field, proposal.id.bytes, bytes(sealed)))


def _made_before(
    session: Session,
    keyring: KeyRing,
    caller: Caller,
    shop_id: uuid.UUID,
    body: PurchaseOrderIn | CreditOfferIn,
    key: str,
) -> Proposal | None:
    """The proposal ``key`` made before, if any; 409 if it was made for something else."""
    before = session.scalars(
        select(Proposal).where(Proposal.consumer_id == caller.id, Proposal.idempotency_key == key)
    ).first()
    if before is None:
        return None
    same = before.shop_id == shop_id and _open(
        keyring, session, before, "content", before.content
    ) == body.model_dump(mode="json")
    if not same:
        raise Conflict("this Idempotency-Key was used for another proposal")
    return before


def create(
    session: Session,
    keyring: KeyRing,
    caller: Caller,
    shop_id: uuid.UUID,
    body: PurchaseOrderIn | CreditOfferIn,
    *,
    now: datetime,
    policy_version: str,
    idempotency_key: str | None = None,
) -> tuple[ProposalOut, bool]:
    """The proposal, and whether it was made now (False: ``idempotency_key`` made it before).

    A consumer that lost the answer sends the same request with the same key
    and gets the same proposal, so a shopkeeper is never asked twice.
    """
    kind = ProposalKind(body.kind)
    purpose = PURPOSE_OF[kind]
    consent = _live_consent(session, shop_id, caller.id, purpose, now)
    if consent is None:
        raise NotFound("no such shop")
    if idempotency_key is not None:
        before = _made_before(session, keyring, caller, shop_id, body, idempotency_key)
        if before is not None:
            return _out(session, keyring, before, now), False
    cipher = keyring.cipher(session, shop_id)
    proposal = Proposal(
        id=uuid.uuid4(),
        shop_id=shop_id,
        consumer_id=caller.id,
        consent_id=consent.id,
        purpose=purpose,
        kind=kind.value,
        status=ProposalStatus.pending.value,
        content=b"",
        key_version=cipher.version,
        created_at=now,
        idempotency_key=idempotency_key,
    )
    proposal.content = _seal(keyring, session, proposal, "content", body.model_dump(mode="json"))
    try:
        with session.begin_nested():
            session.add(proposal)
            session.flush()
    except IntegrityError:
        # The same key, sent twice at once: the other request made it first.
        assert idempotency_key is not None  # the only unique value a caller chooses
        before = _made_before(session, keyring, caller, shop_id, body, idempotency_key)
        if before is None:
            raise
        return _out(session, keyring, before, now), False
    audit.append(
        session,
        AuditDraft.of(
            caller,
            "proposal.create",
            "proposed",
            shop_id=shop_id,
            purpose=purpose,
            policy_version=policy_version,
            details={"proposal_id": str(proposal.id), "kind": kind.value},
        ),
    )
    return _out(session, keyring, proposal, now), True


def for_shop(
    session: Session, keyring: KeyRing, shop_id: uuid.UUID, now: datetime
) -> list[ProposalOut]:
    """The shop's proposals, pending first, newest first within each."""
    rows = session.scalars(
        select(Proposal)
        .where(Proposal.shop_id == shop_id)
        .order_by(Proposal.status != ProposalStatus.pending.value, Proposal.created_at.desc())
    ).all()
    return [_out(session, keyring, row, now) for row in rows]


def for_consumer(
    session: Session, keyring: KeyRing, caller: Caller, proposal_id: uuid.UUID, now: datetime
) -> ProposalOut:
    proposal = session.get(Proposal, proposal_id)
    if proposal is None or proposal.consumer_id != caller.id:
        raise NotFound("no such proposal")
    return _out(session, keyring, proposal, now)


def _answered_lines(content: dict[str, Any], body: AnswerIn) -> list[dict[str, Any]]:
    """The order as the shopkeeper accepted it: their quantities, in whole cases."""
    proposed = {line["sku"]: line for line in content["lines"]}
    if body.lines is None:
        return [{"sku": sku, "quantity": line["quantity"]} for sku, line in proposed.items()]
    problems = []
    for n, line in enumerate(body.lines):
        offered = proposed.get(line.sku)
        if offered is None:
            problems.append(FieldError(field=f"body.lines.{n}.sku", reason="not in the proposal"))
        elif line.quantity % offered["case_pack"]:
            problems.append(
                FieldError(
                    field=f"body.lines.{n}.quantity",
                    reason=f"whole cases of {offered['case_pack']}",
                )
            )
    if problems:
        raise ValidationFailed("the order cannot be accepted like this", problems)
    return [{"sku": line.sku, "quantity": line.quantity} for line in body.lines]


def answer(
    session: Session,
    keyring: KeyRing,
    caller: Caller,
    shop_id: uuid.UUID,
    proposal_id: uuid.UUID,
    body: AnswerIn,
    *,
    now: datetime,
    policy_version: str,
) -> ProposalOut:
    proposal = session.scalars(
        select(Proposal)
        .where(Proposal.id == proposal_id, Proposal.shop_id == shop_id)
        .with_for_update()
    ).first()
    if proposal is None:
        raise NotFound("no such proposal")
    if proposal.status != ProposalStatus.pending.value:
        raise Conflict(f"this proposal was {proposal.status} already")
    withdrawn = _live_consent(session, shop_id, proposal.consumer_id, proposal.purpose, now) is None
    if body.decision == "accept" and withdrawn:
        raise Conflict("the consent this came under has ended: it can no longer be accepted")
    if body.lines is not None and proposal.kind != ProposalKind.purchase_order.value:
        raise ValidationFailed(
            "only an order's quantities can change",
            [FieldError(field="body.lines", reason="a credit offer is taken as it is")],
        )
    answered: dict[str, Any] = {"decision": body.decision}
    if body.decision == "accept" and proposal.kind == ProposalKind.purchase_order.value:
        content = _open(keyring, session, proposal, "content", proposal.content)
        answered["lines"] = _answered_lines(content, body)
    proposal.status = (
        ProposalStatus.accepted if body.decision == "accept" else ProposalStatus.declined
    ).value
    proposal.answer = _seal(keyring, session, proposal, "answer", answered)
    proposal.answered_at = now
    session.flush()
    audit.append(
        session,
        AuditDraft.of(
            caller,
            "proposal.answer",
            proposal.status,
            shop_id=shop_id,
            purpose=proposal.purpose,
            policy_version=policy_version,
            details={"proposal_id": str(proposal.id), "kind": proposal.kind},
        ),
    )
    webhooks.enqueue(
        session,
        proposal.consumer_id,
        ANSWERED_EVENT,
        {
            "proposal_id": str(proposal.id),
            "shop_id": str(shop_id),
            "status": proposal.status,
            "answered_at": now.isoformat(),
        },
        now=now,
    )
    return _out(session, keyring, proposal, now)


def _out(session: Session, keyring: KeyRing, proposal: Proposal, now: datetime) -> ProposalOut:
    consumer = session.get(Principal, proposal.consumer_id)
    pending = proposal.status == ProposalStatus.pending.value
    return ProposalOut(
        id=proposal.id,
        shop_id=proposal.shop_id,
        consumer_id=proposal.consumer_id,
        consumer_name=consumer.name if consumer else "",
        purpose=proposal.purpose,
        kind=proposal.kind,
        status=proposal.status,
        withdrawn=pending
        and _live_consent(session, proposal.shop_id, proposal.consumer_id, proposal.purpose, now)
        is None,
        content=_open(keyring, session, proposal, "content", proposal.content),
        answer=None
        if proposal.answer is None
        else _open(keyring, session, proposal, "answer", proposal.answer),
        created_at=proposal.created_at,
        answered_at=proposal.answered_at,
    )
