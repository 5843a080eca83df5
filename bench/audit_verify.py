"""Audit log ``verify``: offline checks of a 1M-entry export against a signed checkpoint.

A 1M-line export in the API's format (``{"index", "entry":
base64(canonical bytes)}``) of gate-like entries is written with a
signed checkpoint, then ``audit_verifier.verify.verify_export`` reads it, streamed
from the file opened in binary. The baseline only reads and JSON-parses the
same lines.
"""

from __future__ import annotations

import base64
import json
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audit_verifier import chain, merkle
from audit_verifier.note import Checkpoint, Signer
from audit_verifier.verify import verify_export
from bench.common import Size, report

VERIFY_GOAL_S = 10.0

T0 = datetime(2026, 11, 1, tzinfo=UTC)
ORIGIN = "bench.cornerstore.example/audit"


_ACTIONS = (
    ("read", 0.80),
    ("ingest", 0.10),
    ("consent.grant", 0.04),
    ("consent.revoke", 0.02),
    ("export", 0.02),
    ("principal.create", 0.02),
)


def _entry_fields(index: int, rng: random.Random, ids: list[uuid.UUID]) -> dict[str, Any]:
    """The chained fields of a plausible entry (what AuditEntry holds), for leaf ``index``."""
    action = rng.choices([a for a, _ in _ACTIONS], [w for _, w in _ACTIONS])[0]
    allowed = rng.random() < 0.95
    details: dict[str, Any]
    if action == "read":
        consent = rng.choice(ids) if rng.random() < 0.7 else None
        details = {
            "records": rng.randrange(500),
            "consent_id": str(consent) if consent else None,
            "fields": ["occurred_at", "sku", "quantity", "unit_price_cents"],
        }
    elif action == "ingest":
        details = {"accepted": rng.randrange(5000), "rejected": rng.randrange(3)}
    else:
        details = {"note": "bench", "ref": str(rng.choice(ids))}
    return {
        "seq": index + 1,
        "recorded_at": T0 + timedelta(microseconds=1_500 * index),
        "action": action,
        "decision": "allow" if allowed else "deny",
        "reason": "consent" if allowed else "no active consent",
        "principal_id": rng.choice(ids),
        "principal_role": "consumer",
        "shop_id": rng.choice(ids),
        "category": "sales" if action in ("read", "ingest") else None,
        "purpose": "analytics" if action == "read" else None,
        "policy_version": "3",
        "details": details,
    }


def _export_line(index: int, encoded: bytes) -> bytes:
    """One line as ``audit.transparency._export_lines`` writes it."""
    doc = {"index": index, "entry": base64.b64encode(encoded).decode()}
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode()


def _write_export(path: Path, count: int) -> bytes:
    """Write ``count`` lines of export to ``path``; return the tree's root."""
    rng = random.Random(11)
    ids = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(400)]
    builder = merkle.TreeBuilder()
    with path.open("wb") as handle:
        for start in range(0, count, 10_000):
            lines: list[bytes] = []
            leaves: list[bytes] = []
            for index in range(start, min(count, start + 10_000)):
                encoded = chain.canonical_bytes(_entry_fields(index, rng, ids))
                leaves.append(merkle.leaf_hash(encoded))
                # Formatted by hand for speed; checked against the API's format below.
                line = b'{"index":%d,"entry":"%s"}\n' % (index, base64.b64encode(encoded))
                if index % 100_000 == 0 and line != _export_line(index, encoded):
                    raise RuntimeError("the bench export line differs from the API's")
                lines.append(line)
            handle.writelines(lines)
            builder.extend(leaves)
    return builder.root()


def _parse_only(path: Path) -> int:
    count = 0
    loads = json.loads
    with path.open("rb") as handle:
        for line in handle:
            loads(line)
            count += 1
    return count


def run_verify(size: Size) -> dict[str, float]:
    count = size.pick(5_000, 1_000_000)
    signer = Signer.generate("bench.cornerstore.example")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "export.jsonl"
        started = time.perf_counter()
        root = _write_export(path, count)
        write_seconds = time.perf_counter() - started
        note = Checkpoint(ORIGIN, count, root).sign([signer])
        megabytes = os.path.getsize(path) / 2**20

        started = time.perf_counter()
        parsed = _parse_only(path)
        parse_seconds = time.perf_counter() - started
        if parsed != count:
            raise RuntimeError(f"{parsed} lines read, {count} written")

        started = time.perf_counter()
        with path.open("rb") as handle:
            checked = verify_export(handle, note, [signer.verifier], origin=ORIGIN)
        verify_seconds = time.perf_counter() - started
    if not checked.ok or checked.entries_checked != count or checked.entries_not_covered:
        raise RuntimeError(f"the export did not verify: {checked}")
    ratio = verify_seconds / parse_seconds
    report(
        f"verify: offline verification of a {count:,}-entry export ({megabytes:,.0f} MiB, "
        f"written in {write_seconds:.1f} s) against a signed checkpoint",
        [
            (
                "audit_verifier.verify.verify_export",
                f"{verify_seconds:6.2f} s  ({count / verify_seconds:9,.0f} entries/s)",
            ),
            (
                "baseline: read and json.loads each line",
                f"{parse_seconds:6.2f} s  ({count / parse_seconds:9,.0f} entries/s)",
            ),
            ("ratio (verify / parse)", f"{ratio:6.2f}x"),
            ("goal", f"<= {VERIFY_GOAL_S:g} s for 1,000,000 entries"),
        ],
    )
    return {
        "audit_verify_s": verify_seconds,
        "audit_verify_parse_s": parse_seconds,
        "audit_verify_ratio": ratio,
    }
