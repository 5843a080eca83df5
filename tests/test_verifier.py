"""Offline verification (audit_verifier.verify): exports, consistency, inclusion."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from audit_verifier import merkle
from audit_verifier.note import Checkpoint, Signer, Verifier
from audit_verifier.verify import (
    ExportReport,
    ProofFile,
    VerificationError,
    load_proof_file,
    load_verifier_keys,
    parse_proof,
    verify_consistency,
    verify_export,
    verify_inclusion_of,
)

ORIGIN = "cornerstore.example/audit"


def make_entry(index: int, salt: str = "") -> bytes:
    """Stand-in canonical bytes of an audit entry."""
    doc = {"seq": index + 1, "action": "read", "decision": "allow", "note": f"entry {index}{salt}"}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def export_line(index: int, entry: bytes) -> bytes:
    """One export line: the index, the entry's bytes, and decoded fields the verifier ignores."""
    doc = {
        "index": index,
        "entry": base64.b64encode(entry).decode(),
        "seq": index + 1,
        "action": "read",
    }
    return json.dumps(doc).encode() + b"\n"


class Log:
    """A log as the server keeps it: entries, stored perfect-subtree nodes, a signing key."""

    def __init__(self, entries: Sequence[bytes], signer: Signer, origin: str = ORIGIN) -> None:
        self.entries = list(entries)
        self.signer = signer
        self.origin = origin
        self.nodes: dict[merkle.NodeId, bytes] = {}
        builder = merkle.TreeBuilder()
        for entry in entries:
            for level, index, digest in builder.append(merkle.leaf_hash(entry)):
                self.nodes[(level, index)] = digest

    def get(self, ids: Sequence[merkle.NodeId]) -> list[bytes]:
        return [self.nodes[node] for node in ids]

    def checkpoint(self, size: int) -> bytes:
        root = merkle.root(size, self.get)
        return Checkpoint(self.origin, size, root).sign([self.signer])

    def export(self) -> list[bytes]:
        return [export_line(i, entry) for i, entry in enumerate(self.entries)]

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        return merkle.consistency_proof(old_size, new_size, self.get)


SIGNER = Signer.generate(ORIGIN)
VERIFIERS = [SIGNER.verifier]
LOG = Log([make_entry(i) for i in range(100)], SIGNER)
NOTE_100 = LOG.checkpoint(100)


def check(lines: Sequence[bytes | str], note: bytes = NOTE_100) -> ExportReport:
    return verify_export(lines, note, VERIFIERS, origin=ORIGIN)


def test_an_intact_export_verifies() -> None:
    report = check(LOG.export())
    assert report.ok, report.problem
    assert report.entries_checked == 100
    assert report.entries_not_covered == 0
    assert report.checkpoint.size == 100
    assert report.signers == (ORIGIN,)


def test_entries_after_the_checkpoint_are_counted_not_covered() -> None:
    report = check(LOG.export(), LOG.checkpoint(70))
    assert report.ok, report.problem
    assert (report.entries_checked, report.entries_not_covered) == (70, 30)


def test_empty_log_and_blank_lines_and_text_lines() -> None:
    empty = Log([], SIGNER)
    assert check([], empty.checkpoint(0)).ok
    assert check([b"\n", b"  \n"], empty.checkpoint(0)).ok
    lines = [line.decode() for line in LOG.export()]
    lines.insert(50, "\n")
    assert check(lines).ok


def test_an_edited_entry_is_detected() -> None:
    lines = LOG.export()
    lines[37] = export_line(37, make_entry(37, salt=" (edited)"))
    report = check(lines)
    assert not report.ok
    assert report.first_bad_index is None  # a root alone cannot say which entry changed
    assert "do not hash to the checkpoint's root" in str(report.problem)


def test_a_deleted_line_is_detected() -> None:
    lines = LOG.export()
    del lines[37]
    report = check(lines)
    assert (report.first_bad_index, report.entries_checked) == (37, 37)
    assert report.problem == "entry 37 missing: line 38 holds entry 38"


def test_a_deleted_and_renumbered_history_is_detected() -> None:
    entries = LOG.entries[:37] + LOG.entries[38:]
    lines = [export_line(i, entry) for i, entry in enumerate(entries)]
    report = check(lines)
    assert report.first_bad_index == 99
    assert report.problem == "entry 99 is missing: the checkpoint covers 100 entries"


def test_an_inserted_line_is_detected() -> None:
    lines = LOG.export()
    lines.insert(37, export_line(37, make_entry(37, salt=" (forged)")))
    report = check(lines)
    assert report.first_bad_index == 37
    assert report.problem == "entry 37 appears again at line 39, after entry 37"
    lines = LOG.export()
    lines.insert(37, export_line(500, make_entry(500)))
    report = check(lines)
    assert report.first_bad_index == 37
    assert report.problem == "entries 37..499 missing: line 38 holds entry 500"


def test_an_inserted_and_renumbered_entry_is_detected() -> None:
    entries = [*LOG.entries[:37], make_entry(37, salt=" (forged)"), *LOG.entries[37:99]]
    report = check([export_line(i, entry) for i, entry in enumerate(entries)])
    assert not report.ok
    assert "do not hash to the checkpoint's root" in str(report.problem)


def test_swapped_lines_are_detected() -> None:
    lines = LOG.export()
    lines[40], lines[41] = lines[41], lines[40]
    report = check(lines)
    assert report.first_bad_index == 40
    assert report.problem == "entry 40 missing: line 41 holds entry 41"
    # swapped entries that keep their places' indices change the root
    entries = list(LOG.entries)
    entries[40], entries[41] = entries[41], entries[40]
    report = check([export_line(i, entry) for i, entry in enumerate(entries)])
    assert not report.ok
    assert report.first_bad_index is None


def test_an_out_of_order_line_is_detected() -> None:
    lines = LOG.export()
    lines.insert(60, lines[10])
    report = check(lines)
    assert report.first_bad_index == 10
    assert report.problem == "entry 10 is out of order: line 61 holds it after entry 59"


def test_a_truncated_export_is_detected() -> None:
    report = check(LOG.export()[:60])
    assert report.first_bad_index == 60
    assert report.problem == "entries 60..99 are missing: the checkpoint covers 100 entries"
    assert check(LOG.export()[:99]).problem == (
        "entry 99 is missing: the checkpoint covers 100 entries"
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"{not json\n", "line 6 is not valid JSON"),
        (b"[5]\n", "line 6 is not a JSON object"),
        (b'{"entry": "AAAA"}\n', "line 6 has no integer index (entry 5 expected)"),
        (b'{"index": true, "entry": "AAAA"}\n', "line 6 has no integer index"),
        (b'{"index": "5", "entry": "AAAA"}\n', "line 6 has no integer index"),
        (b'{"index": 5}\n', "entry 5 (line 6) has no base64 'entry' field"),
        (b'{"index": 5, "entry": "not base64!"}\n', "entry 5 (line 6) is not valid base64"),
        (b'{"index": 5, "entry": "AAA"}\n', "entry 5 (line 6) is not valid base64"),
        (b'{"index": -1, "entry": "AAAA"}\n', "line 6 has the negative index -1"),
    ],
)
def test_unreadable_lines_are_reported(line: bytes, problem: str) -> None:
    lines = LOG.export()
    lines[5] = line
    report = check(lines)
    assert report.first_bad_index == 5
    assert report.problem is not None
    assert report.problem.startswith(problem)


def test_a_wrong_key_is_refused() -> None:
    other = Signer.generate(ORIGIN)
    with pytest.raises(VerificationError, match="no signature by a known key"):
        verify_export(LOG.export(), NOTE_100, [other.verifier])


def test_a_forged_checkpoint_is_refused() -> None:
    forged = NOTE_100.replace(b"\n100\n", b"\n99\n")
    with pytest.raises(VerificationError, match="does not verify"):
        verify_export(LOG.export(), forged, VERIFIERS)


def test_a_checkpoint_from_another_origin_is_refused() -> None:
    staging = Log(LOG.entries, SIGNER, origin="staging.example/audit")
    with pytest.raises(VerificationError, match=re.escape("from origin 'staging.example/audit'")):
        verify_export(LOG.export(), staging.checkpoint(100), VERIFIERS, origin=ORIGIN)
    other = Log(LOG.entries, Signer.generate("other.example"), origin="other.example")
    with pytest.raises(VerificationError, match="no signature by a known key"):
        verify_export(LOG.export(), other.checkpoint(100), VERIFIERS)


def test_a_rewritten_export_with_its_own_checkpoint_fails_against_the_real_key() -> None:
    rewritten = Log([*LOG.entries[:30], make_entry(30, "x"), *LOG.entries[31:]], SIGNER)
    # the rewritten log verifies against a checkpoint signed for it...
    assert check(rewritten.export(), rewritten.checkpoint(100)).ok
    # ...but not against the checkpoint the auditor already holds
    report = check(rewritten.export())
    assert not report.ok


# --- consistency -----------------------------------------------------------------


def test_consistency_between_two_checkpoints() -> None:
    old_note = LOG.checkpoint(60)
    old, new = verify_consistency(old_note, NOTE_100, LOG.consistency(60, 100), VERIFIERS)
    assert (old.size, new.size) == (60, 100)
    # equal sizes and size 0 need an empty proof
    verify_consistency(NOTE_100, NOTE_100, [], VERIFIERS)
    verify_consistency(LOG.checkpoint(0), NOTE_100, [], VERIFIERS)


def test_a_rewritten_history_is_detected() -> None:
    old_note = LOG.checkpoint(60)
    rewritten = Log([*LOG.entries[:30], make_entry(30, "x"), *LOG.entries[31:]], SIGNER)
    new_note = rewritten.checkpoint(100)
    with pytest.raises(VerificationError, match=r"consistency proof: .*old root"):
        verify_consistency(old_note, new_note, rewritten.consistency(60, 100), VERIFIERS)
    with pytest.raises(VerificationError, match="consistency proof"):
        verify_consistency(old_note, new_note, LOG.consistency(60, 100), VERIFIERS)


def test_consistency_refuses_mixed_logs_keys_and_sizes() -> None:
    staging = Log(LOG.entries, SIGNER, origin="staging.example/audit")
    with pytest.raises(VerificationError, match="different logs"):
        verify_consistency(staging.checkpoint(60), NOTE_100, LOG.consistency(60, 100), VERIFIERS)
    with pytest.raises(VerificationError, match=r"the old checkpoint: .*no signature"):
        verify_consistency(LOG.checkpoint(60), NOTE_100, [], [Signer.generate(ORIGIN).verifier])
    with pytest.raises(VerificationError, match="smaller than the old"):
        verify_consistency(NOTE_100, LOG.checkpoint(60), LOG.consistency(60, 100), VERIFIERS)
    with pytest.raises(VerificationError, match="from size 50 to 100"):
        verify_consistency(
            LOG.checkpoint(60), NOTE_100, ProofFile(50, 100, LOG.consistency(50, 100)), VERIFIERS
        )


def proof_document(old_size: int, new_size: int, proof: list[bytes]) -> str:
    return json.dumps(
        {
            "old_size": old_size,
            "new_size": new_size,
            "proof": [base64.b64encode(p).decode() for p in proof],
        }
    )


def test_proof_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "proof.json"
    path.write_text(proof_document(60, 100, LOG.consistency(60, 100)))
    proof = load_proof_file(path)
    assert proof == ProofFile(60, 100, LOG.consistency(60, 100))
    verify_consistency(LOG.checkpoint(60), NOTE_100, proof, VERIFIERS, origin=ORIGIN)
    with pytest.raises(VerificationError, match="cannot read the proof file"):
        load_proof_file(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", "not a JSON object"),
        ("{", "not valid JSON"),
        ('{"old_size": 1, "new_size": 2}', "proof is not a list"),
        ('{"old_size": -1, "new_size": 2, "proof": []}', "old_size is not"),
        ('{"old_size": 1, "new_size": "2", "proof": []}', "new_size is not"),
        ('{"old_size": 1, "new_size": 2, "proof": [7]}', "proof hash 0 is not"),
        ('{"old_size": 1, "new_size": 2, "proof": ["AAAA"]}', "proof hash 0 is 3 bytes"),
    ],
)
def test_bad_proof_files_are_refused(text: str, problem: str) -> None:
    with pytest.raises(VerificationError, match=problem):
        parse_proof(text)


# --- inclusion -------------------------------------------------------------------


def test_inclusion_of_one_entry() -> None:
    checkpoint = Checkpoint(ORIGIN, 100, merkle.root(100, LOG.get))
    proof = merkle.inclusion_proof(17, 100, LOG.get)
    verify_inclusion_of(LOG.entries[17], 17, proof, checkpoint)
    with pytest.raises(VerificationError, match="inclusion proof for entry 17"):
        verify_inclusion_of(make_entry(17, "x"), 17, proof, checkpoint)
    with pytest.raises(VerificationError, match="entry 18"):
        verify_inclusion_of(LOG.entries[17], 18, proof, checkpoint)


# --- keys --------------------------------------------------------------------------


def test_verifier_keys_from_strings_and_files(tmp_path: Path) -> None:
    old, new = Signer.generate(ORIGIN), Signer.generate(ORIGIN)
    assert load_verifier_keys(old.verifier_key) == [old.verifier]
    path = tmp_path / "keys.txt"
    path.write_text(f"# the log's keys\n{old.verifier_key}\n\n  {new.verifier_key}  \n")
    assert load_verifier_keys(str(path)) == [old.verifier, new.verifier]
    assert load_verifier_keys([str(path), SIGNER.verifier_key]) == [
        old.verifier,
        new.verifier,
        SIGNER.verifier,
    ]
    with pytest.raises(VerificationError, match="neither a verifier key nor"):
        load_verifier_keys(str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(VerificationError, match="holds no verifier key"):
        load_verifier_keys(str(tmp_path / "empty.txt"))
    (tmp_path / "bad.txt").write_text(f"{old.verifier_key}\nnot+a+key\n")
    with pytest.raises(VerificationError, match="key line 2"):
        load_verifier_keys(str(tmp_path / "bad.txt"))
    with pytest.raises(VerificationError, match="the key"):
        load_verifier_keys(old.verifier_key[:-4])
    with pytest.raises(VerificationError, match="no verifier key"):
        load_verifier_keys([])


def test_verifier_keys_of_a_rotated_log_verify_old_and_new_checkpoints(tmp_path: Path) -> None:
    old, new = Signer.generate(ORIGIN), Signer.generate(ORIGIN)
    before = Log(LOG.entries[:60], old).checkpoint(60)
    after = Log(LOG.entries, new).checkpoint(100)
    path = tmp_path / "keys.txt"
    path.write_text(f"{old.verifier_key}\n{new.verifier_key}\n")
    keys: list[Verifier] = load_verifier_keys(str(path))
    verify_consistency(before, after, LOG.consistency(60, 100), keys)
    assert verify_export(LOG.export(), before, keys).entries_not_covered == 40


# --- size ----------------------------------------------------------------------------


def test_a_large_export_verifies_quickly() -> None:
    """200k entries; the goal is about 1 s per 200k (benchmarks own exact timing)."""
    n = 200_000
    template = b'{"index": %d, "entry": "%s", "seq": %d, "action": "read"}\n'
    entries = [make_entry(i) for i in range(n)]
    lines = [template % (i, base64.b64encode(entry), i + 1) for i, entry in enumerate(entries)]
    root = merkle.root_from_leaf_hashes([merkle.leaf_hash(e) for e in entries])
    note = Checkpoint(ORIGIN, n, root).sign([SIGNER])
    started = time.perf_counter()
    report = verify_export(lines, note, VERIFIERS)
    elapsed = time.perf_counter() - started
    assert report.ok, report.problem
    assert report.entries_checked == n
    assert elapsed < 30, f"200k entries took {elapsed:.1f} s"
