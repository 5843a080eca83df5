"""The group writer encodes entries before it takes the log's lock and splices in
the appended fields after: the bytes must be exactly the canonical ones, or
every leaf hash and chain link an auditor recomputes would disagree."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from audit_verifier.chain import canonical_bytes, encode_unsequenced, splice, timestamp

_text = st.text(max_size=30)
_json_leaf = st.none() | st.booleans() | st.integers() | _text
_details = st.dictionaries(
    _text,
    st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=3), max_leaves=6),
    max_size=4,
)


@given(
    action=_text,
    decision=st.sampled_from(["allow", "deny"]),
    reason=_text,
    principal_id=st.none() | st.uuids(),
    principal_role=st.none() | _text,
    shop_id=st.none() | st.uuids(),
    category=st.none() | _text,
    purpose=st.none() | _text,
    policy_version=st.none() | _text,
    details=_details,
    recorded_at=st.datetimes(timezones=st.just(UTC)),
    seq=st.integers(min_value=1, max_value=2**62),
)
def test_spliced_bytes_are_the_canonical_bytes(
    recorded_at: datetime, seq: int, **fields: Any
) -> None:
    before, after = encode_unsequenced(fields)
    expected = canonical_bytes({**fields, "recorded_at": recorded_at, "seq": seq})
    assert splice(before, after, timestamp(recorded_at), seq) == expected


def test_a_spliced_entry_reads_as_json_with_its_seq_and_time() -> None:
    shop = uuid.uuid4()
    fields = {
        "action": "read",
        "decision": "allow",
        "reason": 'a "quoted" reason, 中文',
        "principal_id": None,
        "principal_role": "consumer",
        "shop_id": shop,
        "category": "sales",
        "purpose": "replenishment",
        "policy_version": "3",
        "details": {"records": 2},
    }
    at = datetime(2026, 11, 27, 8, 0, 0, 123456, tzinfo=UTC)
    doc = json.loads(splice(*encode_unsequenced(fields), timestamp(at), 42))
    assert doc["seq"] == 42
    assert doc["recorded_at"] == "2026-11-27T08:00:00.123456Z"
    assert doc["shop_id"] == str(shop)
    assert doc["reason"] == fields["reason"]
