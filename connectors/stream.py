"""The ingest stream's messages: who signed them, which shop they are for, and storing them.

A push connector publishes to ``cornerstore.ingest.<shop_id>.<category>`` a
body in the API's JSON shape (one record, or a list of them), with three
headers:

- ``Nats-Msg-Id``: the record's natural id (or the batch's), so that
  JetStream drops a retry within the stream's duplicate window;
- ``Cornerstore-Key``: the id of the Ed25519 key it registered
  (``POST /v1/principals/{id}/signing-keys``);
- ``Cornerstore-Signature``: base64url of the signature over
  :func:`signed_bytes` (the subject and the body).

The signature, not the NATS account, is what says who published: the hub
checks it, then decides with the same Casbin policy and stores with the same
service as ``POST /v1/shops/{id}/<category>``. So a connector of shop A that
publishes on shop B's subject is refused, and the refusal audited, exactly
as the same request over HTTP would be; and the hub needs no operator rights
over the NATS deployment it is given.

Nothing here speaks NATS: :mod:`connectors.stream_worker` fetches, and
answers each message as :func:`store` says.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from connectors import service
from connectors.schemas import RecordError, RejectedRecord
from cornerstore.access import AuthorizeShop, Permit
from cornerstore.authz import Action
from cornerstore.categories import CATEGORIES, Category
from cornerstore.errors import CornerstoreError, Unauthenticated
from cornerstore.identity import Caller, signers
from cornerstore.ports import Core

log = logging.getLogger(__name__)

SUBJECT_PREFIX: Final = "cornerstore.ingest"
KEY_HEADER: Final = "Cornerstore-Key"
SIGNATURE_HEADER: Final = "Cornerstore-Signature"
_SIGNED_PREFIX: Final = b"cornerstore-ingest-v1\n"

#: Categories a connector sends as events. The catalogue is sent whole (PUT), never streamed.
STREAMED: Final = tuple(c for c, spec in CATEGORIES.items() if not spec.replaced)


def signed_bytes(subject: str, body: bytes) -> bytes:
    """What a message's signature covers: the subject (so, the shop) and the body."""
    return _SIGNED_PREFIX + subject.encode() + b"\n" + body


class Outcome(StrEnum):
    #: Stored, quarantined or found stored before: acknowledge it.
    done = "done"
    #: Unsigned, signed by an unknown key, or not the signer's to send: never retried.
    refused = "refused"
    #: Something that may pass (the database): try again later.
    retry = "retry"


@dataclass(frozen=True)
class Delivery:
    """One message as the worker fetched it."""

    subject: str
    headers: Mapping[str, str]
    body: bytes


#: A message's records, and the faults of the message as a whole by record index.
_Parsed = tuple[list[Any], dict[int, RejectedRecord]]


class _Refused(Exception):
    """A message no one may send: answered, logged by its subject, never retried."""


def store(core: Core, deliveries: Sequence[Delivery]) -> list[Outcome]:
    """Check and store a fetch of messages, committing before anything is acknowledged.

    The signers of the whole fetch are looked up at once. Messages for the
    same shop, category and signer are decided together (one permit, one
    refusal audited) and stored as one batch would be: one transaction for
    up to the record limit of a batch. The outcome of each message says how
    the worker answers it.
    """
    outcomes = [Outcome.refused] * len(deliveries)
    claims: list[tuple[int, _Claim]] = []
    for position, delivery in enumerate(deliveries):
        try:
            claims.append((position, _claim(delivery)))
        except _Refused as refusal:
            _refused(delivery, refusal)
    with core.sessions() as session:
        found = signers(session, {claim.key_id for _, claim in claims})
    groups: dict[tuple[uuid.UUID, Category, uuid.UUID], tuple[Caller, list[int]]] = {}
    for position, claim in claims:
        signer = found.get(claim.key_id)
        try:
            if signer is None:
                raise Unauthenticated()
            caller = signer.verify(claim.signed, claim.signature)
        except Unauthenticated:
            _refused(deliveries[position], _Refused("the signature does not verify with a key"))
            continue
        key = (claim.shop_id, claim.category, caller.id)
        groups.setdefault(key, (caller, []))[1].append(position)
    permitted: list[tuple[Permit, list[int]]] = []
    for (shop_id, category, _), (caller, positions) in groups.items():
        try:
            # The permit POST /v1/shops/{id}/<category> declares, decided the same way.
            permitted.append(
                (AuthorizeShop(category, Action.write)(shop_id, core, caller), positions)
            )
        except CornerstoreError:
            # Not the signer's to send: the permit has audited the refusal.
            log.warning("refused %d messages for a shop: not the signer's", len(positions))
    for permit, positions in permitted:
        parsed = {position: _records(core, deliveries[position].body) for position in positions}
        for chunk in _chunks(positions, parsed, core.settings.ingest_max_records):
            outcome = _store(core, permit, [parsed[position] for position in chunk])
            if outcome is Outcome.retry and len(chunk) > 1:
                # Whatever failed may be one message's doing: each is tried on its own.
                for position in chunk:
                    outcomes[position] = _store(core, permit, [parsed[position]])
            else:
                for position in chunk:
                    outcomes[position] = outcome
    return outcomes


def _chunks(positions: list[int], parsed: dict[int, _Parsed], most: int) -> Iterator[list[int]]:
    """Messages in order, a batch of at most ``most`` records at a time (one message more
    when it alone holds more)."""
    chunk: list[int] = []
    held = 0
    for position in positions:
        count = len(parsed[position][0])
        if chunk and held + count > most:
            yield chunk
            chunk, held = [], 0
        chunk.append(position)
        held += count
    if chunk:
        yield chunk


def _refused(delivery: Delivery, refusal: _Refused) -> None:
    # The subject names a shop and a category, no shop data; the reason says which check.
    log.warning("refused a message on %s: %s", delivery.subject, refusal)


@dataclass(frozen=True)
class _Claim:
    """What a message says of itself, before anything of it is believed."""

    shop_id: uuid.UUID
    category: Category
    key_id: str
    signed: bytes
    signature: bytes


def _claim(delivery: Delivery) -> _Claim:
    shop_id, category = _parse_subject(delivery.subject)
    key_id = delivery.headers.get(KEY_HEADER, "")
    encoded = delivery.headers.get(SIGNATURE_HEADER, "")
    if not key_id or not encoded:
        raise _Refused(f"unsigned: {KEY_HEADER} and {SIGNATURE_HEADER} are required")
    try:
        signature = base64.b64decode(encoded + "=" * (-len(encoded) % 4), b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise _Refused(f"{SIGNATURE_HEADER} is not base64url") from None
    signed = signed_bytes(delivery.subject, delivery.body)
    return _Claim(shop_id, category, key_id, signed, signature)


def _parse_subject(subject: str) -> tuple[uuid.UUID, Category]:
    parts = subject.split(".")
    if len(parts) != 4 or ".".join(parts[:2]) != SUBJECT_PREFIX:
        raise _Refused("the subject is not cornerstore.ingest.<shop_id>.<category>")
    shop, rest = parts[2], parts[3]
    try:
        shop_id = uuid.UUID(shop)
    except ValueError:
        raise _Refused("the subject's shop is not a UUID") from None
    try:
        category = Category(rest)
    except ValueError:
        raise _Refused("the subject's category is not one the hub keeps") from None
    if category not in STREAMED:
        raise _Refused("a catalogue is sent whole, with PUT /v1/shops/{id}/catalogue")
    return shop_id, category


def _records(core: Core, body: bytes) -> _Parsed:
    """The records a body holds; a body that holds none readable is kept as one refused record."""
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        text = body.decode("utf-8", errors="backslashreplace")
        return [text], {0: _unreadable("the message is not JSON")}
    records = parsed if isinstance(parsed, list) else [parsed]
    limit = core.settings.ingest_max_records
    if len(records) > limit:
        reason = f"a message holds at most {limit} records; this one holds {len(records)}"
        return [parsed], {0: _unreadable(reason)}
    return records, {}


def _unreadable(reason: str) -> RejectedRecord:
    return RejectedRecord.of(0, [RecordError(field="", reason=reason)], None)


def _store(core: Core, permit: Permit, messages: list[_Parsed]) -> Outcome:
    """Store messages of one shop, category and signer as one batch, in one transaction.

    One shop a transaction keeps the hub's lock order (the shop's rows, then
    the audit head), so workers storing at once never deadlock.
    """
    records, unreadable = _batch(messages)
    try:
        with core.sessions() as session:
            service.ingest(
                session,
                core.keyring.cipher(session, permit.shop),
                permit.caller,
                permit.category,
                records,
                policy_version=permit.policy_version,
                unreadable=unreadable,
            )
            session.commit()
    except Exception as exc:
        # The exception's type only: its message may quote the values it failed on.
        name = type(exc).__name__
        log.warning("storing %d messages failed (%s); they will be retried", len(messages), name)
        return Outcome.retry
    return Outcome.done


def _batch(messages: list[_Parsed]) -> _Parsed:
    """The records of several messages as one batch, with each message's own faults."""
    records: list[Any] = []
    unreadable: dict[int, RejectedRecord] = {}
    for found, faults in messages:
        for index, rejected in faults.items():
            at = len(records) + index
            unreadable[at] = rejected.model_copy(update={"index": at})
        records.extend(found)
    return records, unreadable
