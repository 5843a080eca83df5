"""Signed notes and checkpoints (audit_verifier.note): published vectors, an independent reader.

Vectors, transcribed byte for byte:

* golang.org/x/mod ``sumdb/note/note_test.go`` (github.com/golang/mod, BSD):
  the PeterNeumann and EnochRoot keys, TestSign's exact output, TestOpen's
  signatures and malformed notes, and TestNewVerifier / TestNewSigner's
  rule that every substring and every one-byte change of a key is refused;
* a real sum.golang.org checkpoint (a C2SP tlog-checkpoint signed note),
  quoted in github.com/sigsum/sigsum ``proposals/2026-01-22-tags-releases-non-releases.md``,
  with the log's verifier key from github.com/golang/go
  ``src/cmd/go/internal/modfetch/key.go``;
* the examples of github.com/C2SP/C2SP ``signed-note.md`` and
  ``tlog-checkpoint.md`` (their keys are not published: form only).

At the end, an implementation of signed-note verification written here from
the C2SP text alone (it does not import audit_verifier.note) checks notes audit_verifier.note made.
"""

from __future__ import annotations

import base64
import hashlib
import re
import string

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_verifier.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    check_name,
    key_id,
    open_note,
    parse_note,
    sign_note,
    verify_checkpoint,
)

# --- golang.org/x/mod sumdb/note/note_test.go -----------------------------------

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)


def test_go_verifier_key() -> None:
    verifier = Verifier.from_key(PETER_VKEY)
    assert verifier.name == "PeterNeumann"
    assert verifier.key_id == bytes.fromhex("c74f20a3")
    assert verifier.key_id_hex == "c74f20a3"
    assert verifier.verifier_key == PETER_VKEY


def test_go_verifier_key_manglings_are_refused() -> None:
    # TestNewVerifier: every proper substring, and every key with one byte incremented
    b = PETER_VKEY
    accepted = []
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                try:
                    Verifier.from_key(b[i:j])
                    accepted.append(b[i:j])
                except NoteError:
                    pass
    for i in range(len(b)):
        mangled = b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :]
        try:
            Verifier.from_key(mangled)
            accepted.append(mangled)
        except NoteError:
            pass
    assert accepted == []
    # wrong length key, with adjusted key hash; unknown algorithm, with adjusted key hash
    for bad in [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ]:
        with pytest.raises(NoteError):
            Verifier.from_key(bad)


def test_go_signer_key_and_its_manglings() -> None:
    signer = Signer.from_key(PETER_SKEY)
    assert signer.verifier_key == PETER_VKEY
    assert signer.signer_key() == PETER_SKEY
    b = PETER_SKEY
    accepted = []
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                try:
                    Signer.from_key(b[i:j])
                    accepted.append(b[i:j])
                except NoteError:
                    pass
    for i in range(len(b)):
        mangled = b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :]
        try:
            Signer.from_key(mangled)
            accepted.append(mangled)
        except NoteError:
            pass
    assert accepted == []


def test_go_sign_is_byte_exact() -> None:
    # TestSign: Ed25519 is deterministic, so the note is fixed.
    signer = Signer.from_key(PETER_SKEY)
    want = TEXT + "\n" + PETER_SIG
    assert signer.sign(TEXT.encode()) == want.encode()
    for bad in [b"abc", b"", b"a\x01b\n", b"\xff\n"]:
        with pytest.raises(NoteError):
            signer.sign(bad)


def test_go_open() -> None:
    peter, enoch = Verifier.from_key(PETER_VKEY), Verifier.from_key(ENOCH_VKEY)
    note = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()
    # one signature verified, the other's key unknown (ignored)
    assert open_note(note, [peter]) == (TEXT.encode(), ["PeterNeumann"])
    # both verified
    assert open_note(note, [peter, enoch]) == (TEXT.encode(), ["PeterNeumann", "EnochRoot"])
    # none verified
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(note, [])
    # an unused duplicated verifier is fine
    assert open_note((TEXT + "\n" + PETER_SIG).encode(), [enoch, peter, enoch]).signers == [
        "PeterNeumann"
    ]
    # too many signatures
    with pytest.raises(NoteError, match="more than 100"):
        open_note((TEXT + "\n" + PETER_SIG * 101).encode(), [peter])
    # an invalid signature by a known key
    with pytest.raises(NoteError, match="does not verify"):
        open_note((TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]).encode(), [peter])
    # duplicated verified and unverified signatures
    enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    messy = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd
    assert open_note(messy.encode(), [peter]).signers == ["PeterNeumann"]


@pytest.mark.parametrize(
    "message",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        "\xff" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name").rstrip("\n"),
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ],
)
def test_go_malformed_notes(message: str) -> None:
    raw = message.encode()
    if message.startswith("\xff"):
        raw = b"\xff" + message[1:].encode()  # an invalid UTF-8 byte, as in Go's "\xff"
    with pytest.raises(NoteError):
        open_note(raw, [Verifier.from_key(PETER_VKEY)])


# --- a real sum.golang.org checkpoint ---------------------------------------------

SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n"
    "49189689\n"
    "ftjbAOzaupaIvaPo/G+Dk63nxOZ2s1OPOKIaPtXs7S4=\n"
    "\n"
    "— sum.golang.org "
    "Az3grlKZssqRoMNPpZfKt0TphbbcF+pzXqElURJKRNFKfaUAgqeI5k2AORH0QAhg/ebRwyIqD/OqP4oLtLnNumvOBAM=\n"
).encode()


def test_real_sumdb_checkpoint_verifies() -> None:
    checkpoint = verify_checkpoint(
        SUMDB_NOTE, [Verifier.from_key(SUMDB_VKEY)], origin="go.sum database tree"
    )
    assert checkpoint.size == 49189689
    assert checkpoint.root_hash == base64.b64decode("ftjbAOzaupaIvaPo/G+Dk63nxOZ2s1OPOKIaPtXs7S4=")
    tampered = SUMDB_NOTE.replace(b"49189689", b"49189688")
    with pytest.raises(NoteError, match="does not verify"):
        verify_checkpoint(tampered, [Verifier.from_key(SUMDB_VKEY)])
    with pytest.raises(NoteError, match=re.escape("not 'example.com/log'")):
        verify_checkpoint(SUMDB_NOTE, [Verifier.from_key(SUMDB_VKEY)], origin="example.com/log")


# --- the C2SP examples (form only: their keys are not published) -------------------

C2SP_NOTE = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed è subito sera.\n"
    "\n"
    "— quasimodo.example/salvatore "
    "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
).encode()

C2SP_CHECKPOINT = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
).encode()


def test_c2sp_signed_note_example_parses() -> None:
    body, signatures = parse_note(C2SP_NOTE)
    # the text may hold blank lines: the last one separates the signatures
    assert body.decode().endswith("\ned è subito sera.\n")
    assert [(s.name, len(s.key_id), len(s.signature)) for s in signatures] == [
        ("quasimodo.example/salvatore", 4, 64)
    ]
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(C2SP_NOTE, [Verifier.from_key(PETER_VKEY)])


def test_c2sp_checkpoint_example_parses() -> None:
    body, signatures = parse_note(C2SP_CHECKPOINT)
    checkpoint = Checkpoint.parse(body)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.format() == body
    assert signatures[0].name == "example.com/behind-the-sofa"


# --- round trips, tampering, rotation ------------------------------------------------

ROOT = hashlib.sha256(b"a root").digest()


def test_round_trip() -> None:
    signer = Signer.generate("cornerstore.example/audit")
    verifier = Verifier.from_key(signer.verifier_key)
    assert verifier == signer.verifier
    assert Signer.from_key(signer.signer_key()).verifier_key == signer.verifier_key
    checkpoint = Checkpoint("cornerstore.example/audit", 42, ROOT)
    note = checkpoint.sign([signer])
    assert note.startswith(checkpoint.format() + b"\n\xe2\x80\x94 cornerstore.example/audit ")
    assert verify_checkpoint(note, [verifier], origin="cornerstore.example/audit") == checkpoint
    assert open_note(note, [verifier]).signers == ["cornerstore.example/audit"]
    assert key_id(verifier.name, verifier.public_key) == verifier.key_id


def test_empty_tree_checkpoint() -> None:
    checkpoint = Checkpoint("log", 0, hashlib.sha256(b"").digest())
    assert checkpoint.format() == b"log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    assert Checkpoint.parse(checkpoint.format()) == checkpoint


def test_extension_lines_pass_through() -> None:
    checkpoint = Checkpoint("log", 7, ROOT, ("ext one", "ext two"))
    assert Checkpoint.parse(checkpoint.format()) == checkpoint
    assert checkpoint.format().endswith(b"\next one\next two\n")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"log\n7\n", "origin, a size and a root"),
        (b"log\n07\n" + base64.b64encode(ROOT) + b"\n", "plain decimal"),
        (b"log\n-7\n" + base64.b64encode(ROOT) + b"\n", "plain decimal"),
        (b"log\n+7\n" + base64.b64encode(ROOT) + b"\n", "plain decimal"),
        (b"log\n7 \n" + base64.b64encode(ROOT) + b"\n", "plain decimal"),
        (b"log\n\xd9\xa7\n" + base64.b64encode(ROOT) + b"\n", "plain decimal"),
        (b"log\n7\n" + base64.b64encode(ROOT[:31]) + b"\n", "32 bytes"),
        (b"log\n7\n" + base64.b64encode(ROOT).rstrip(b"=") + b"\n", "base64"),
        (b"log\n7\n" + base64.b64encode(ROOT), "end with a newline"),
        (b"\n7\n" + base64.b64encode(ROOT) + b"\n", "origin"),
        (b"log\n7\n" + base64.b64encode(ROOT) + b"\n\n", "extension"),
        (b"log\n7\n" + base64.b64encode(ROOT) + b"\r\n", "control character"),
    ],
)
def test_malformed_checkpoints_are_refused(body: bytes, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        Checkpoint.parse(body)


def test_checkpoint_fields_are_checked() -> None:
    with pytest.raises(NoteError):
        Checkpoint("", 1, ROOT)
    with pytest.raises(NoteError):
        Checkpoint("two\nlines", 1, ROOT)
    with pytest.raises(NoteError):
        Checkpoint("log", -1, ROOT)
    with pytest.raises(NoteError):
        Checkpoint("log", 1, ROOT[:5])


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0here", "new\nline"])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(NoteError):
        check_name(name)
    with pytest.raises(NoteError):
        Signer(name, Ed25519PrivateKey.generate())


def flip_signature(note: bytes, line: int = 0) -> bytes:
    body, _, sigs = note.rpartition(b"\n\n")
    lines = sigs.split(b"\n")
    prefix, encoded = lines[line].rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 0x01
    lines[line] = prefix + b" " + base64.b64encode(bytes(raw))
    return body + b"\n\n" + b"\n".join(lines)


def change_key_id(note: bytes) -> bytes:
    body, _, sigs = note.rpartition(b"\n\n")
    prefix, encoded = sigs.rstrip(b"\n").rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[0] ^= 0x01
    return body + b"\n\n" + prefix + b" " + base64.b64encode(bytes(raw)) + b"\n"


def test_tampering_is_refused() -> None:
    signer = Signer.generate("log.example")
    verifier = signer.verifier
    note = Checkpoint("log.example", 10, ROOT).sign([signer])
    open_note(note, [verifier])
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note.replace(b"\n10\n", b"\n11\n"), [verifier])
    with pytest.raises(NoteError, match="does not verify"):
        open_note(flip_signature(note), [verifier])
    # another key ID (or name) makes it a signature by an unknown key: no known signature left
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(change_key_id(note), [verifier])
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(
            note.replace(b"\xe2\x80\x94 log.example ", b"\xe2\x80\x94 log.example2 "), [verifier]
        )
    # a different key under the same name
    impostor = Signer.generate("log.example")
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(impostor.sign(Checkpoint("log.example", 10, ROOT).format()), [verifier])
    # dash must be the em dash and a space
    with pytest.raises(NoteError, match="does not start"):
        open_note(note.replace("—".encode(), b"-"), [verifier])


def test_unknown_signers_are_ignored_but_a_bad_known_one_is_fatal() -> None:
    log, witness = Signer.generate("log.example"), Signer.generate("witness.example")
    note = sign_note(b"hello\n", [log, witness])
    assert open_note(note, [log.verifier]).signers == ["log.example"]
    assert open_note(note, [witness.verifier]).signers == ["witness.example"]
    assert open_note(note, [log.verifier, witness.verifier]).signers == [
        "log.example",
        "witness.example",
    ]
    # a corrupt witness signature is ignored by someone who does not know the witness...
    spoiled = flip_signature(note, 1)
    assert open_note(spoiled, [log.verifier]).signers == ["log.example"]
    # ...but refused by someone who does, even though the log's signature is good
    with pytest.raises(NoteError, match=re.escape("witness.example")):
        open_note(spoiled, [log.verifier, witness.verifier])


def test_key_rotation() -> None:
    old, new = Signer.generate("log.example"), Signer.generate("log.example")
    assert old.key_id != new.key_id
    before = Checkpoint("log.example", 5, ROOT).sign([old])
    during = Checkpoint("log.example", 6, ROOT).sign([old, new])
    after = Checkpoint("log.example", 7, ROOT).sign([new])
    both = [old.verifier, new.verifier]
    for note in (before, during, after):
        verify_checkpoint(note, both)
    verify_checkpoint(before, [old.verifier])
    verify_checkpoint(during, [old.verifier])
    verify_checkpoint(during, [new.verifier])
    with pytest.raises(NoteError):
        verify_checkpoint(before, [new.verifier])
    with pytest.raises(NoteError):
        verify_checkpoint(after, [old.verifier])
    assert open_note(during, both).signers == ["log.example", "log.example"]


def test_sign_note_needs_a_signer() -> None:
    with pytest.raises(NoteError):
        sign_note(b"hello\n", [])


# --- an independent reader, from the C2SP signed-note text alone --------------------


def independent_open(note: bytes, vkey: str) -> bytes:
    """Verify ``note`` with the verifier key ``vkey``; return the text, or raise ValueError.

    Written from c2sp.org/signed-note: the text ends in a newline and is
    followed by a blank line, then lines "— <name> <base64(key ID || sig)>";
    key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4]; Ed25519 over the
    text; unknown keys are ignored, a failing known key rejects the note, and
    at least one known key must verify. A verifier key reads
    "<name>+<8 hex digits of key ID>+<base64(0x01 || public key)>".
    """
    name, id_hex, key_b64 = vkey.split("+", 2)
    key = base64.b64decode(key_b64, validate=True)
    if key[:1] != b"\x01" or len(key) != 33:
        raise ValueError("not an Ed25519 verifier key")
    public = key[1:]
    kid = hashlib.sha256(name.encode() + b"\x0a" + b"\x01" + public).digest()[:4]
    if kid.hex() != id_hex.lower():
        raise ValueError("key ID does not match")
    text = note.decode("utf-8")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise ValueError("control character")
    cut = text.rindex("\n\n")
    body, sig_block = text[: cut + 1], text[cut + 2 :]
    if not sig_block.endswith("\n"):
        raise ValueError("signature lines must end with a newline")
    verified = False
    for line in sig_block[:-1].split("\n"):
        if not line.startswith("\u2014\u0020"):
            raise ValueError("not a signature line")
        sig_name, sig_b64 = line[2:].split(" ", 1)
        raw = base64.b64decode(sig_b64, validate=True)
        if sig_name != name or raw[:4] != kid:
            continue
        Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], body.encode())
        verified = True
    if not verified:
        raise ValueError("no signature by the key")
    return body.encode()


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_independent_reader_knows_the_go_vector() -> None:
    note = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()
    assert independent_open(note, PETER_VKEY) == TEXT.encode()
    assert independent_open(note, ENOCH_VKEY) == TEXT.encode()
    assert independent_open(SUMDB_NOTE, SUMDB_VKEY).startswith(b"go.sum database tree\n")


#: Any character a note may hold: no surrogates, no control characters.
BODY_CHARS = st.characters(
    exclude_categories=["Cs"], exclude_characters="".join(map(chr, range(0x20)))
)


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.text(BODY_CHARS, max_size=30), min_size=1, max_size=5),
    names=st.lists(
        st.text(string.ascii_letters + string.digits + "./-_", min_size=1, max_size=20),
        min_size=1,
        max_size=3,
    ),
)
def test_independent_reader_verifies_audit_note_output(lines: list[str], names: list[str]) -> None:
    body = "".join(line + "\n" for line in lines).encode()
    signers = [Signer(name, Ed25519PrivateKey.generate()) for name in names]
    note = sign_note(body, signers)
    for signer in signers:
        assert independent_open(note, signer.verifier_key) == body
        assert open_note(note, [signer.verifier]).body == body
    with pytest.raises((ValueError, InvalidSignature)):
        independent_open(flip_signature(note), signers[0].verifier_key)


def test_independent_reader_verifies_checkpoints() -> None:
    private = Ed25519PrivateKey.generate()
    signer = Signer("cornerstore.example/audit", private)
    # the verifier key, built by hand from the spec rather than taken from audit_verifier.note
    public = raw_public(private)
    kid = hashlib.sha256(b"cornerstore.example/audit\n\x01" + public).digest()[:4]
    encoded = base64.b64encode(b"\x01" + public).decode()
    vkey = f"cornerstore.example/audit+{kid.hex()}+{encoded}"
    assert vkey == signer.verifier_key
    for size in (0, 1, 12345678901):
        note = Checkpoint("cornerstore.example/audit", size, ROOT).sign([signer])
        body = independent_open(note, vkey)
        assert (
            body
            == f"cornerstore.example/audit\n{size}\n{base64.b64encode(ROOT).decode()}\n".encode()
        )
        with pytest.raises(InvalidSignature):
            independent_open(note.replace(b"\n%d\n" % size, b"\n%d\n" % (size + 1)), vkey)
