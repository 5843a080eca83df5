"""Ingestion: validate each record, seal the good ones, quarantine the bad, store nothing twice."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from audit import service as audit
from connectors.schemas import BatchResult, RecordError, RejectedRecord
from cornerstore.categories import CATEGORIES, Category, CategorySpec, RecordIn
from cornerstore.crypto import ShopCipher
from cornerstore.db import utcnow
from cornerstore.identity import Caller
from cornerstore.ports import AuditDraft
from cornerstore.records import repository
from cornerstore.records.codec import (
    QUARANTINE_KIND,
    RAW_FIELD,
    VALUES_FIELD,
    format_time,
    quarantine_record_key,
)
from cornerstore.records.repository import NewRecord

_ADAPTERS = {
    category: TypeAdapter(list[spec.schema])  # type: ignore[name-defined]
    for category, spec in CATEGORIES.items()
}


@dataclass(frozen=True)
class _Validated:
    good: list[tuple[int, RecordIn]]
    rejected: list[RejectedRecord]


def _validate(
    category: Category, raw: list[Any], found: Mapping[int, RejectedRecord]
) -> _Validated:
    """Validate the whole batch in one call, and again without the bad records.

    One call over the list is several times faster than one per record; the
    second pass only runs when some records were bad. Every fault of a record
    is named, not only its first. ``found`` holds faults found before
    validation: a CSV line with the wrong number of cells (not validated
    further), a local time that cannot be placed (the other fields still are).
    """
    adapter = _ADAPTERS[category]
    errors: dict[int, list[RecordError]] = {i: list(r.errors) for i, r in found.items()}
    unreadable = {i for i, r in found.items() if r.field == ""}
    positions = [i for i in range(len(raw)) if i not in unreadable]
    try:
        records = adapter.validate_python([raw[i] for i in positions])
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            index = positions[int(error["loc"][0])]
            field = ".".join(str(part) for part in error["loc"][1:])
            known = errors.setdefault(index, [])
            if all(e.field != field for e in known):
                known.append(RecordError(field=field, reason=error["msg"]))
        positions = [i for i in positions if i not in errors]
        records = adapter.validate_python([raw[i] for i in positions])
    else:
        if errors:
            kept = [(i, r) for i, r in zip(positions, records, strict=True) if i not in errors]
            positions, records = [i for i, _ in kept], [r for _, r in kept]
    rejected = [
        RejectedRecord.of(index, problems, found[index].line if index in found else None)
        for index, problems in sorted(errors.items())
    ]
    return _Validated(list(zip(positions, records, strict=True)), rejected)


def replace(
    session: Session,
    cipher: ShopCipher,
    caller: Caller,
    category: Category,
    raw_records: list[Any],
    *,
    policy_version: str,
    unreadable: Mapping[int, RejectedRecord] | None = None,
    lines: Sequence[int] | None = None,
) -> BatchResult:
    """Replace the shop's records of a category sent whole (the catalogue) with these.

    In one transaction, under the shop's row lock so that two replacements
    at once follow each other rather than mix: the old records go, the good
    new ones are stored (each stamped with now as its time), the bad ones
    are quarantined as they came, unstamped.
    """
    repository.lock_shop(session, cipher.shop_id)
    repository.delete_category(session, cipher.shop_id, category.value)
    return ingest(
        session,
        cipher,
        caller,
        category,
        raw_records,
        policy_version=policy_version,
        unreadable=unreadable,
        lines=lines,
    )


def resubmit(
    session: Session,
    cipher: ShopCipher,
    caller: Caller,
    category: Category,
    record: Any,
    *,
    policy_version: str,
) -> BatchResult:
    """One corrected record; for a category sent whole, it takes the place of its SKU's."""
    spec = CATEGORIES[category]
    if spec.replaced:
        repository.lock_shop(session, cipher.shop_id)
        [(_, validated)] = _validate(category, [_stamped(spec, record, utcnow())], {}).good
        key = cipher.record_key(category, spec.natural_id(validated))
        repository.delete_record(session, cipher.shop_id, category.value, key)
    return ingest(session, cipher, caller, category, [record], policy_version=policy_version)


def _stamped(spec: CategorySpec, record: Any, now: datetime) -> Any:
    """A record of a category sent whole, with the hub's time of it: now."""
    if spec.replaced and isinstance(record, dict):
        return {**record, spec.time_field: format_time(now)}
    return record


def faults(category: Category, record: Any) -> list[RecordError]:
    """Every fault of one record, as a batch would name them; none if it would be stored."""
    rejected = _validate(category, [_stamped(CATEGORIES[category], record, utcnow())], {}).rejected
    return rejected[0].errors if rejected else []


def ingest(
    session: Session,
    cipher: ShopCipher,
    caller: Caller,
    category: Category,
    raw_records: list[Any],
    *,
    policy_version: str,
    unreadable: Mapping[int, RejectedRecord] | None = None,
    lines: Sequence[int] | None = None,
) -> BatchResult:
    """Store the good records once each, quarantine the bad ones once each, and audit the batch.

    ``lines``: for a CSV upload, the file line of each record, kept with a
    quarantined record and named in its rejection.
    """
    shop_id = cipher.shop_id
    batch_id = uuid.uuid4()
    spec = CATEGORIES[category]
    now = utcnow()
    # A category sent whole takes the hub's time; what arrived is quarantined as it came.
    # Events carry their own: their batches (the hot path) are validated as they are.
    checked = [_stamped(spec, r, now) for r in raw_records] if spec.replaced else raw_records
    validated = _validate(category, checked, unreadable or {})
    exclude = {spec.time_field}

    rows: dict[bytes, NewRecord] = {}
    for _, record in validated.good:
        key = cipher.record_key(category, spec.natural_id(record))
        if key in rows:
            continue  # Sent twice in one batch: a duplicate, like one stored before.
        # The event time is stored in the clear; everything else is sealed.
        values = record.model_dump_json(exclude=exclude).encode()
        rows[key] = NewRecord(
            shop_id,
            category.value,
            key,
            getattr(record, spec.time_field),
            cipher.seal(category, VALUES_FIELD, key, values),
            cipher.version,
            batch_id,
            now,
        )
    inserted = repository.insert_new(session, list(rows.values()))
    duplicates = len(validated.good) - inserted

    repository.quarantine(
        session,
        [
            {
                "shop_id": shop_id,
                "category": category.value,
                "batch_id": batch_id,
                "position": rejected.index,
                "field": rejected.field[:200],
                "reason": _reasons(rejected)[:500],
                "sealed": _seal_quarantined(cipher, batch_id, rejected.index, raw_records),
                "key_version": cipher.version,
                "line": None if lines is None else lines[rejected.index],
                "fingerprint": _fingerprint(cipher, category, raw_records[rejected.index]),
            }
            for rejected in validated.rejected
        ],
    )
    audit.append(
        session,
        AuditDraft.of(
            caller,
            "ingest",
            "stored",
            shop_id=shop_id,
            category=category.value,
            policy_version=policy_version,
            details={
                "batch_id": str(batch_id),
                "received": len(raw_records),
                "accepted": inserted,
                "duplicates": duplicates,
                "rejected": len(validated.rejected),
            },
        ),
    )
    rejected = validated.rejected
    if lines is not None:
        rejected = [r.model_copy(update={"line": lines[r.index]}) for r in rejected]
    return BatchResult(
        batch_id=str(batch_id), accepted=inserted, duplicates=duplicates, rejected=rejected
    )


def _reasons(rejected: RejectedRecord) -> str:
    """One fault as it is; several each with its field."""
    if len(rejected.errors) <= 1:
        return rejected.reason
    return "; ".join(f"{e.field}: {e.reason}" if e.field else e.reason for e in rejected.errors)


def _fingerprint(cipher: ShopCipher, category: Category, raw: Any) -> bytes:
    """What makes a refused record the same when it arrives again: a keyed digest of it."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return cipher.record_key(f"{QUARANTINE_KIND}:{category.value}", canonical)


def _seal_quarantined(
    cipher: ShopCipher, batch_id: uuid.UUID, index: int, raw_records: list[Any]
) -> bytes:
    # A rejected record is still the shop's data: it is kept, but sealed.
    record_key = quarantine_record_key(batch_id, index)
    # ASCII-escaped JSON, so that even text no UTF-8 can hold (a lone
    # surrogate, the reason it was refused) is kept as it came.
    raw = json.dumps(raw_records[index], separators=(",", ":"), ensure_ascii=True).encode()
    return cipher.seal(QUARANTINE_KIND, RAW_FIELD, record_key, raw)
