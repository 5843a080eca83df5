"""The hash chain over audit entries: canonical bytes, entry hashes, verification.

This module depends on nothing but the standard library, so an auditor can
read it and re-run it over an export. Each entry's hash covers its canonical
bytes and the previous entry's hash:

    entry_hash = SHA-256(prev_hash || canonical_bytes(entry))

with 32 zero bytes before the first entry. Changing, removing, inserting or
reordering an entry breaks every hash after it; the first bad sequence number
is reported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = bytes(32)

#: The fields an entry's hash covers, in the order they are encoded.
CHAINED_FIELDS = (
    "seq",
    "recorded_at",
    "action",
    "decision",
    "reason",
    "principal_id",
    "principal_role",
    "shop_id",
    "category",
    "purpose",
    "policy_version",
    "details",
)


def timestamp(value: datetime) -> str:
    """How an entry's time is written: UTC, microseconds, a ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_value(name: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return timestamp(value)
    if value is not None and name in ("principal_id", "shop_id"):
        return str(value)
    return value


def _dumps(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_bytes(entry: Mapping[str, Any]) -> bytes:
    """UTF-8 JSON of the chained fields, keys sorted, no insignificant spaces."""
    return _dumps({name: _json_value(name, entry[name]) for name in CHAINED_FIELDS})


# The two fields an entry gets when it is appended sort next to each other, so
# an entry can be encoded before it has them and they are spliced in after.
_SPLICED = ("recorded_at", "seq")
_BEFORE = tuple(name for name in CHAINED_FIELDS if name < _SPLICED[0])
_AFTER = tuple(name for name in CHAINED_FIELDS if name > _SPLICED[1])
if not _BEFORE or not _AFTER or len(_BEFORE) + len(_AFTER) + 2 != len(CHAINED_FIELDS):
    raise RuntimeError("a chained field sorts between recorded_at and seq, or none around them")


def encode_unsequenced(entry: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """An entry's canonical bytes before and after its (recorded_at, seq) pair.

    The group writer encodes entries this way before it takes the log's lock,
    and :func:`splice` finishes them under the lock, where every microsecond
    holds up every appender. ``splice(*encode_unsequenced(e), timestamp(t), n)``
    equals ``canonical_bytes(e | {"recorded_at": t, "seq": n})``.
    """
    before = _dumps({name: _json_value(name, entry[name]) for name in _BEFORE})
    after = _dumps({name: _json_value(name, entry[name]) for name in _AFTER})
    return before[:-1], after[1:]


def splice(before: bytes, after: bytes, recorded_at: str, seq: int) -> bytes:
    """Canonical bytes from :func:`encode_unsequenced`'s halves and the appended fields."""
    return b'%b,"recorded_at":"%b","seq":%d,%b' % (before, recorded_at.encode(), seq, after)


def entry_hash(prev_hash: bytes, entry: Mapping[str, Any]) -> bytes:
    return link(prev_hash, canonical_bytes(entry))


def link(prev_hash: bytes, encoded: bytes) -> bytes:
    """The chain hash of an entry given its canonical bytes."""
    return hashlib.sha256(prev_hash + encoded).digest()


@dataclass(frozen=True)
class ChainReport:
    entries_checked: int
    first_bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


@dataclass(frozen=True)
class ChainHead:
    """The recorded tip: the newest entry's seq and hash (0 and the genesis hash when empty)."""

    seq: int
    entry_hash: bytes


def verify_chain(entries: Iterable[Mapping[str, Any]], *, head: ChainHead | None) -> ChainReport:
    """Check entries given in seq order, each with ``prev_hash`` and ``entry_hash``.

    Give every entry up to ``head.seq`` and none after it. The head also
    catches removal of the newest entries, which a chain alone cannot see, so
    a missing head (None) is a failure: that removal could not be ruled out.
    The chain starts at entry 1; an entry numbered below 1 is reported too.
    """
    expected_seq = 1
    prev = GENESIS_HASH
    checked = 0
    for entry in entries:
        seq = int(entry["seq"])
        if seq < expected_seq:
            where = " (the chain starts at entry 1)" if seq < 1 else ""
            return ChainReport(checked, seq, f"entry {seq} is out of order{where}")
        if seq > expected_seq:
            return ChainReport(checked, expected_seq, f"entry {expected_seq} is missing")
        if bytes(entry["prev_hash"]) != prev:
            return ChainReport(checked, seq, f"entry {seq} does not follow entry {seq - 1}")
        recomputed = entry_hash(prev, entry)
        if recomputed != bytes(entry["entry_hash"]):
            return ChainReport(checked, seq, f"entry {seq} was altered")
        prev = recomputed
        checked += 1
        expected_seq += 1
    first = checked + 1
    if head is None:
        return ChainReport(
            checked,
            first,
            f"the chain's head row is missing, so entries from {first} on may have been removed",
        )
    if head.seq > checked:
        return ChainReport(checked, first, f"entries {first}..{head.seq} are missing")
    if head.seq < checked:
        return ChainReport(
            checked, head.seq + 1, f"entry {head.seq + 1} is not in the chain's head"
        )
    if bytes(head.entry_hash) != prev:
        what = f"entry {checked}" if checked else "the empty log"
        return ChainReport(checked, checked, f"{what} differs from the chain's head")
    return ChainReport(checked)
