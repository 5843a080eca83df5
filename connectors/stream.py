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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from connectors import service
from connectors.schemas import RecordError, RejectedRecord
from cornerstore.access import AuthorizeShop
from cornerstore.authz import Action
from cornerstore.categories import CATEGORIES, Category
from cornerstore.errors import CornerstoreError
from cornerstore.identity import Caller, caller_from_signature
from cornerstore.ports import Core

log = logging.getLogger(__name__)

SUBJECT_PREFIX: Final = "cornerstore.ingest"
KEY_HEADER: Final = "Cornerstore-Key"
SIGNATURE_HEADER: Final = "Cornerstore-Signature"
_SIGNED_PREFIX: Final = b"cornerstore-ingest-v1\n"

#: Categories a connector sends as events. The catalogue is sent whole (PUT), never streamed.
STREAMED: Final = tuple(c for c, spec in CATEGORIES.items() if not spec.replaced)


def subject_for(shop_id: uuid.UUID, category: Category) -> str:
    return f"{SUBJECT_PREFIX}.{shop_id}.{category.value}"


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


@dataclass(frozen=True)
class _Accepted:
    position: int
    shop_id: uuid.UUID
    category: Category
    caller: Caller
    policy_version: str
    records: list[Any]
    #: Faults of the message as a whole (not JSON, too many records), by record index.
    unreadable: dict[int, RejectedRecord]


class _Refused(Exception):
    """A message no one may send: answered, logged by its subject, never retried."""


def store(core: Core, deliveries: Sequence[Delivery]) -> list[Outcome]:
    """Check and store a fetch of messages, committing before anything is acknowledged.

    Messages for the same shop, category and signer are stored together, in
    one transaction, as one batch would be. The outcome of each message says
    how the worker answers it.
    """
    outcomes = [Outcome.refused] * len(deliveries)
    accepted: list[_Accepted] = []
    for position, delivery in enumerate(deliveries):
        try:
            accepted.append(_accept(core, position, delivery))
        except _Refused as refusal:
            # The subject names a shop and a category, no shop data; the reason says which check.
            log.warning("refused a message on %s: %s", delivery.subject, refusal)
        except CornerstoreError:
            # Not the signer's to send: the permit has audited the refusal.
            log.warning("refused a message on %s: not allowed", delivery.subject)
    groups: dict[tuple[uuid.UUID, Category, uuid.UUID], list[_Accepted]] = {}
    for message in accepted:
        groups.setdefault((message.shop_id, message.category, message.caller.id), []).append(
            message
        )
    for group in groups.values():
        outcome = _store_group(core, group)
        for message in group:
            outcomes[message.position] = outcome
    return outcomes


def _accept(core: Core, position: int, delivery: Delivery) -> _Accepted:
    shop_id, category = _parse_subject(delivery.subject)
    caller = _signer(core, delivery)
    # The permit POST /v1/shops/{id}/<category> declares, decided the same way.
    permit = AuthorizeShop(category, Action.write)(shop_id, core, caller)
    records, unreadable = _records(core, delivery.body)
    return _Accepted(
        position, shop_id, category, caller, permit.policy_version, records, unreadable
    )


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


def _signer(core: Core, delivery: Delivery) -> Caller:
    key_id = delivery.headers.get(KEY_HEADER, "")
    encoded = delivery.headers.get(SIGNATURE_HEADER, "")
    if not key_id or not encoded:
        raise _Refused(f"unsigned: {KEY_HEADER} and {SIGNATURE_HEADER} are required")
    try:
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise _Refused(f"{SIGNATURE_HEADER} is not base64url") from None
    with core.sessions() as session:
        try:
            return caller_from_signature(
                session, key_id, signed_bytes(delivery.subject, delivery.body), signature
            )
        except CornerstoreError:
            raise _Refused("the signature does not verify with a registered key") from None


def _records(core: Core, body: bytes) -> tuple[list[Any], dict[int, RejectedRecord]]:
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


def _store_group(core: Core, group: list[_Accepted]) -> Outcome:
    first = group[0]
    records: list[Any] = []
    unreadable: dict[int, RejectedRecord] = {}
    for message in group:
        for index, rejected in message.unreadable.items():
            unreadable[len(records) + index] = rejected.model_copy(
                update={"index": len(records) + index}
            )
        records.extend(message.records)
    try:
        with core.sessions() as session:
            cipher = core.keyring.cipher(session, first.shop_id)
            service.ingest(
                session,
                cipher,
                first.caller,
                first.category,
                records,
                policy_version=first.policy_version,
                unreadable=unreadable,
            )
            session.commit()
    except Exception as exc:
        # The exception's type only: its message may quote the values it failed on.
        log.warning(
            "storing %d messages failed (%s); they will be retried", len(group), type(exc).__name__
        )
        return Outcome.retry
    return Outcome.done
