"""Offline verification of the audit log for auditors: exports, checkpoints and proofs.

This module depends only on :mod:`audit_verifier.merkle`, :mod:`audit_verifier.note`, the
standard library and ``cryptography``; it needs no server and no database.
An auditor holds the log's public verifier key(s) and checks:

* an export (JSON Lines, one entry per line, ``{"index": i, "entry":
  "<base64 of the entry's canonical bytes>", ...}``; other fields are
  ignored) against a signed checkpoint: the entries 0..size-1 must be
  present, once each and in order, and their Merkle tree root must be the
  checkpoint's root hash (:func:`verify_export`);
* that a newer checkpoint extends an older one, i.e. the log only grew
  (:func:`verify_consistency`);
* that one entry is in a checkpointed tree (:func:`verify_inclusion_of`).

A checkpoint, key or proof that cannot be trusted raises
:class:`VerificationError`; an export that does not match its checkpoint
gives an :class:`ExportReport` naming the problem and, where there is one,
the first bad index.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from audit_verifier import merkle
from audit_verifier.note import Checkpoint, NoteError, Verifier, open_note

#: Leaf hashes are added to the tree in batches of this many.
_BATCH = 4096


class VerificationError(ValueError):
    """A checkpoint, key, proof or proof file does not verify or cannot be read."""


def open_checkpoint(
    note: bytes,
    verifiers: Iterable[Verifier],
    *,
    origin: str | None = None,
    what: str = "checkpoint",
) -> tuple[Checkpoint, list[str]]:
    """Verify a signed checkpoint; return it and the names of the known keys that signed it."""
    try:
        opened = open_note(note, verifiers)
        checkpoint = Checkpoint.parse(opened.body)
    except NoteError as exc:
        raise VerificationError(f"{what}: {exc}") from exc
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(f"{what}: it is from origin {checkpoint.origin!r}, not {origin!r}")
    return checkpoint, opened.signers


@dataclass(frozen=True)
class ExportReport:
    """The outcome of :func:`verify_export`."""

    checkpoint: Checkpoint
    #: Names of the known keys whose signatures on the checkpoint verified.
    signers: tuple[str, ...]
    #: Entries whose leaf hashes went into the root (at most the checkpoint's size).
    entries_checked: int
    #: Entries after the checkpoint's size, which it does not cover.
    entries_not_covered: int = 0
    #: The first index whose entry is missing, repeated, out of order or unreadable.
    first_bad_index: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Bad(Exception):
    def __init__(self, index: int | None, problem: str) -> None:
        super().__init__(problem)
        self.index = index
        self.problem = problem


def _record(line: bytes | str, number: int, expected: int) -> dict[str, object]:
    try:
        record = json.loads(line)
    except ValueError:
        raise _Bad(expected, f"line {number} is not valid JSON") from None
    if not isinstance(record, dict):
        raise _Bad(expected, f"line {number} is not a JSON object")
    return record


def _check_index(record: dict[str, object], number: int, expected: int) -> None:
    index = record.get("index")
    if type(index) is not int:
        raise _Bad(expected, f"line {number} has no integer index (entry {expected} expected)")
    if index == expected:
        return
    if index > expected:
        missing = (
            f"entry {expected}" if index == expected + 1 else f"entries {expected}..{index - 1}"
        )
        raise _Bad(expected, f"{missing} missing: line {number} holds entry {index}")
    if index < 0:
        raise _Bad(expected, f"line {number} has the negative index {index}")
    raise _Bad(
        index,
        f"entry {index} appears again at line {number}, after entry {expected - 1}"
        if index == expected - 1
        else f"entry {index} is out of order: line {number} holds it after entry {expected - 1}",
    )


def _entry_bytes(record: dict[str, object], number: int, index: int) -> bytes:
    encoded = record.get("entry")
    if not isinstance(encoded, str):
        raise _Bad(index, f"entry {index} (line {number}) has no base64 'entry' field")
    try:
        return binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError):
        raise _Bad(index, f"entry {index} (line {number}) is not valid base64") from None


def verify_export(
    lines: Iterable[bytes | str],
    checkpoint_note: bytes,
    verifiers: Iterable[Verifier],
    *,
    origin: str | None = None,
) -> ExportReport:
    """Check an export against a signed checkpoint.

    ``lines`` are the export's lines in file order (a file opened in binary
    mode will do; blank lines are skipped). Entries 0..size-1 must come first,
    in order, each once; later entries are counted, their index sequence
    checked, but the checkpoint says nothing about them. Raises
    :class:`VerificationError` when the checkpoint itself does not verify.
    """
    checkpoint, signers = open_checkpoint(checkpoint_note, verifiers, origin=origin)
    size = checkpoint.size
    builder = merkle.TreeBuilder()
    pending: list[bytes] = []
    sha256 = hashlib.sha256
    expected = 0

    def report(checked: int, bad: int | None = None, problem: str | None = None) -> ExportReport:
        return ExportReport(
            checkpoint, tuple(signers), checked, max(expected - size, 0), bad, problem
        )

    try:
        for number, line in enumerate(lines, start=1):
            if not line or line.isspace():
                continue
            record = _record(line, number, expected)
            _check_index(record, number, expected)
            if expected < size:
                pending.append(sha256(b"\x00" + _entry_bytes(record, number, expected)).digest())
                if len(pending) == _BATCH:
                    builder.extend(pending)
                    pending.clear()
            expected += 1
    except _Bad as bad:
        builder.extend(pending)
        return ExportReport(checkpoint, tuple(signers), builder.size, 0, bad.index, bad.problem)
    builder.extend(pending)
    checked = builder.size
    if checked < size:
        missing = (
            f"entry {checked} is" if checked == size - 1 else f"entries {checked}..{size - 1} are"
        )
        return report(checked, checked, f"{missing} missing: the checkpoint covers {size} entries")
    if builder.root() != checkpoint.root_hash:
        return report(
            checked,
            None,
            f"the first {size} entries do not hash to the checkpoint's root: an entry's "
            "bytes were changed, or entries were renumbered, removed or added",
        )
    return report(checked)


class ProofFile(NamedTuple):
    """A consistency proof as the API returns it and the CLI reads it."""

    old_size: int
    new_size: int
    proof: list[bytes]


def parse_proof(data: bytes | str) -> ProofFile:
    """Read ``{"old_size": m, "new_size": n, "proof": ["<base64>", ...]}``."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise VerificationError(f"the proof file is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise VerificationError("the proof file is not a JSON object")
    sizes = []
    for field in ("old_size", "new_size"):
        value = doc.get(field)
        if type(value) is not int or value < 0:
            raise VerificationError(f"the proof file's {field} is not a non-negative integer")
        sizes.append(value)
    hashes = doc.get("proof")
    if not isinstance(hashes, list):
        raise VerificationError("the proof file's proof is not a list")
    proof: list[bytes] = []
    for i, item in enumerate(hashes):
        try:
            if not isinstance(item, str):
                raise ValueError
            value = binascii.a2b_base64(item, strict_mode=True)
        except (binascii.Error, ValueError):
            raise VerificationError(f"proof hash {i} is not a base64 string") from None
        if len(value) != merkle.HASH_SIZE:
            raise VerificationError(f"proof hash {i} is {len(value)} bytes, not {merkle.HASH_SIZE}")
        proof.append(value)
    return ProofFile(sizes[0], sizes[1], proof)


def load_proof_file(path: str | Path) -> ProofFile:
    """Read a consistency proof file (see :func:`parse_proof`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise VerificationError(f"cannot read the proof file {path}: {exc.strerror}") from None
    return parse_proof(data)


def parse_verifier_keys(text: str) -> list[Verifier]:
    """Verifier keys, one a line; blank lines and lines starting with '#' are skipped."""
    verifiers: list[Verifier] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            verifiers.append(Verifier.from_key(line))
        except NoteError as exc:
            raise VerificationError(f"key line {number}: {exc}") from None
    return verifiers


def load_verifier_keys(specs: str | Iterable[str]) -> list[Verifier]:
    """The verifiers named by each spec: a verifier key string, or a file of key lines."""
    verifiers: list[Verifier] = []
    for spec in [specs] if isinstance(specs, str) else specs:
        path = Path(spec)
        try:
            is_file = path.is_file()
        except (OSError, ValueError):
            is_file = False
        if "+" not in spec or is_file:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise VerificationError(
                    f"{spec} is neither a verifier key nor a readable key file ({exc})"
                ) from None
            found = parse_verifier_keys(text)
            if not found:
                raise VerificationError(f"the key file {spec} holds no verifier key")
            verifiers.extend(found)
        else:
            try:
                verifiers.append(Verifier.from_key(spec.strip()))
            except NoteError as exc:
                raise VerificationError(f"the key {spec!r}: {exc}") from None
    if not verifiers:
        raise VerificationError("no verifier key was given")
    return verifiers


def verify_consistency(
    old_note: bytes,
    new_note: bytes,
    proof: Sequence[bytes] | ProofFile,
    verifiers: Iterable[Verifier],
    *,
    origin: str | None = None,
) -> tuple[Checkpoint, Checkpoint]:
    """Check that the log of ``new_note`` extends that of ``old_note``; return both checkpoints.

    Both checkpoints must verify and share an origin. Given a :class:`ProofFile`,
    its sizes must be the checkpoints' sizes.
    """
    known = list(verifiers)
    old, _ = open_checkpoint(old_note, known, origin=origin, what="the old checkpoint")
    new, _ = open_checkpoint(new_note, known, origin=origin, what="the new checkpoint")
    if old.origin != new.origin:
        raise VerificationError(
            f"the checkpoints are from different logs: {old.origin!r} and {new.origin!r}"
        )
    hashes: Sequence[bytes]
    if isinstance(proof, ProofFile):
        if (proof.old_size, proof.new_size) != (old.size, new.size):
            raise VerificationError(
                f"the proof is from size {proof.old_size} to {proof.new_size}, but the "
                f"checkpoints have sizes {old.size} and {new.size}"
            )
        hashes = proof.proof
    else:
        hashes = proof
    try:
        merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, hashes)
    except merkle.ProofError as exc:
        raise VerificationError(f"consistency proof: {exc}") from exc
    return old, new


def verify_inclusion_of(
    entry_bytes: bytes, index: int, proof: Sequence[bytes], checkpoint: Checkpoint
) -> None:
    """Check that ``entry_bytes`` is entry ``index`` of the (verified) checkpoint's tree."""
    try:
        merkle.verify_inclusion(
            index, checkpoint.size, merkle.leaf_hash(entry_bytes), proof, checkpoint.root_hash
        )
    except merkle.ProofError as exc:
        raise VerificationError(f"inclusion proof for entry {index}: {exc}") from exc
