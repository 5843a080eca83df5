"""Signed notes and checkpoints (C2SP signed-note and tlog-checkpoint), with Ed25519.

This module depends on the standard library and ``cryptography`` only, so an
auditor can read it and re-run it. A *checkpoint* states a log's size and
root hash; it is the body of a *signed note*:

    <origin>\\n
    <tree size, decimal>\\n
    <root hash, standard base64>\\n
    [extension lines]
    \\n
    — <key name> <base64(key ID || Ed25519 signature of the body)>\\n
    [more signature lines]

The em dash is U+2014. The key ID is four bytes:

    key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]

and a public key is written as the verifier key string
``<name>+<key ID, 8 hex digits>+<base64(0x01 || public key)>``.

Reading a note follows the specification: signatures from keys the reader
does not know are ignored (that is how keys rotate and witnesses cosign),
a signature from a known key must verify or the whole note is refused, and
at least one known key must have signed. Any failure raises :class:`NoteError`.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

#: The signature type identifier of Ed25519 in C2SP signed-note.
ALG_ED25519 = 0x01

#: The most signature lines a note may carry (the specification requires accepting 16).
MAX_SIGNATURES = 100

_DASH = "\u2014 "
_ROOT_HASH_SIZE = 32
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class NoteError(ValueError):
    """A note, checkpoint or key is malformed, or its signatures do not verify."""


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64 (padding required, no stray characters)."""
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc


def check_name(name: str) -> None:
    """Raise :class:`NoteError` unless ``name`` is a valid key name: non-empty, no space, no '+'."""
    if not name:
        raise NoteError("a key name cannot be empty")
    if "+" in name:
        raise NoteError(f"key name {name!r} contains '+'")
    if any(ch.isspace() for ch in name):
        raise NoteError(f"key name {name!r} contains a space")
    if any(ord(ch) < 0x20 for ch in name):
        raise NoteError(f"key name {name!r} contains a control character")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


class Verifier:
    """A trusted Ed25519 public key under a name: checks the signatures it made."""

    __slots__ = ("_key", "key_id", "name", "public_key")

    def __init__(self, name: str, public_key: bytes | Ed25519PublicKey) -> None:
        check_name(name)
        if isinstance(public_key, Ed25519PublicKey):
            raw = _raw_public_key(public_key)
        else:
            raw = bytes(public_key)
            if len(raw) != 32:
                raise NoteError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
        self.name = name
        #: The raw 32-byte Ed25519 public key.
        self.public_key = raw
        #: The 4-byte key ID signature lines carry.
        self.key_id = key_id(name, raw)
        try:
            self._key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise NoteError(f"not an Ed25519 public key: {exc}") from None

    @classmethod
    def from_key(cls, vkey: str) -> Verifier:
        """Parse a verifier key string ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key reads <name>+<key ID>+<key>")
        name, id_hex, key_b64 = parts
        check_name(name)
        wanted_id = _parse_key_id(id_hex)
        key = _b64decode(key_b64, "the verifier key")
        if not key or key[0] != ALG_ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (type 0x01)")
        verifier = cls(name, key[1:])
        if verifier.key_id != wanted_id:
            raise NoteError(f"the verifier key's ID {id_hex} does not match its name and key")
        return verifier

    @property
    def key_id_hex(self) -> str:
        """The key ID as 8 lowercase hex digits, as in key strings."""
        return self.key_id.hex()

    @property
    def verifier_key(self) -> str:
        """This key as a verifier key string."""
        encoded = _b64encode(bytes([ALG_ED25519]) + self.public_key)
        return f"{self.name}+{self.key_id_hex}+{encoded}"

    def verify(self, body: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without the key ID) is this key's signature of ``body``."""
        try:
            self._key.verify(signature, body)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Verifier):
            return NotImplemented
        return (self.name, self.public_key) == (other.name, other.public_key)

    def __hash__(self) -> int:
        return hash((self.name, self.public_key))

    def __repr__(self) -> str:
        return f"Verifier({self.verifier_key!r})"


def _parse_key_id(id_hex: str) -> bytes:
    if len(id_hex) != 8 or not set(id_hex) <= _HEX_DIGITS:
        raise NoteError(f"a key ID is 8 hex digits, not {id_hex!r}")
    return bytes.fromhex(id_hex)


class Signer:
    """An Ed25519 private key under a name: signs notes."""

    __slots__ = ("_private", "verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        #: The matching public key, to give to whoever verifies.
        self.verifier = Verifier(name, private_key.public_key())

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_key(cls, skey: str) -> Signer:
        """Parse a signer key string ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise NoteError("a signer key reads PRIVATE+KEY+<name>+<key ID>+<key>")
        _, _, name, id_hex, key_b64 = parts
        check_name(name)
        wanted_id = _parse_key_id(id_hex)
        key = _b64decode(key_b64, "the signer key")
        if len(key) != 33 or key[0] != ALG_ED25519:
            raise NoteError("the signer key is not an Ed25519 seed (type 0x01, 32 bytes)")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(key[1:]))
        if signer.key_id != wanted_id:
            raise NoteError(f"the signer key's ID {id_hex} does not match its name and key")
        return signer

    @property
    def name(self) -> str:
        return self.verifier.name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID."""
        return self.verifier.key_id

    @property
    def key_id_hex(self) -> str:
        """The key ID as 8 lowercase hex digits."""
        return self.verifier.key_id_hex

    @property
    def verifier_key(self) -> str:
        """The public verifier key string; safe to publish."""
        return self.verifier.verifier_key

    def signer_key(self) -> str:
        """The private signer key string. It holds the secret seed: keep it secret."""
        seed = self._private.private_bytes_raw()
        encoded = _b64encode(bytes([ALG_ED25519]) + seed)
        return f"PRIVATE+KEY+{self.name}+{self.key_id_hex}+{encoded}"

    def signature_line(self, body: bytes) -> bytes:
        """The signature line ``— <name> <base64(key ID || signature)>\\n`` for ``body``."""
        _check_body(body)
        signature = self._private.sign(body)
        return f"{_DASH}{self.name} {_b64encode(self.key_id + signature)}\n".encode()

    def sign(self, body: bytes) -> bytes:
        """The signed note: ``body``, a blank line, this key's signature line."""
        return sign_note(body, [self])

    def __repr__(self) -> str:
        return f"Signer({self.verifier_key!r})"


def _check_text(text: bytes, what: str) -> str:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError(f"{what} is not valid UTF-8") from exc
    for ch in decoded:
        if ord(ch) < 0x20 and ch != "\n":
            raise NoteError(f"{what} contains the control character {ch!r}")
    return decoded


def _check_body(body: bytes) -> None:
    _check_text(body, "the note text")
    if not body.endswith(b"\n"):
        raise NoteError("the note text must end with a newline")


def sign_note(body: bytes, signers: Iterable[Signer]) -> bytes:
    """A note with ``body`` signed by every signer in order (e.g. old and new key, to rotate)."""
    lines = [signer.signature_line(body) for signer in signers]
    if not lines:
        raise NoteError("a note needs at least one signature")
    return body + b"\n" + b"".join(lines)


class Signature(NamedTuple):
    """One signature line of a note, not yet verified."""

    name: str
    key_id: bytes
    signature: bytes


def parse_note(note: bytes) -> tuple[bytes, list[Signature]]:
    """Split a signed note into its text and signature lines, checking only their form.

    Nothing is verified: use :func:`open_note` for that.
    """
    decoded = _check_text(note, "the note")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteError("the note has no blank line before its signatures")
    body = decoded[: split + 1].encode()
    block = decoded[split + 2 :]
    if not block:
        raise NoteError("the note has no signature")
    if not block.endswith("\n"):
        raise NoteError("the note's last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"the note has more than {MAX_SIGNATURES} signatures")
    signatures: list[Signature] = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_DASH):
            raise NoteError(f"signature line {number} does not start with '— '")
        name, space, encoded = line[len(_DASH) :].partition(" ")
        if not space:
            raise NoteError(f"signature line {number} has no signature after the key name")
        check_name(name)
        raw = _b64decode(encoded, f"signature line {number}")
        if len(raw) < 5:
            raise NoteError(f"signature line {number} is too short")
        signatures.append(Signature(name, raw[:4], raw[4:]))
    return body, signatures


class OpenedNote(NamedTuple):
    """A verified note: its text and the names of the known keys whose signatures verified."""

    body: bytes
    signers: list[str]


def _index(verifiers: Iterable[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        slot = (verifier.name, verifier.key_id)
        other = known.setdefault(slot, verifier)
        if other != verifier:
            raise NoteError(
                f"two different keys share the name {verifier.name} and key ID "
                f"{verifier.key_id_hex}"
            )
    return known


def open_note(note: bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Verify a signed note; return its text and who (of the known keys) signed it.

    Signatures by unknown keys are ignored. A signature by a known key that
    does not verify makes the whole note invalid, and so does having no
    signature by a known key at all: both raise :class:`NoteError`.
    """
    known = _index(verifiers)
    body, signatures = parse_note(note)
    signers: list[str] = []
    seen: set[tuple[str, bytes]] = set()
    unknown: list[str] = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            unknown.append(f"{sig.name}+{sig.key_id.hex()}")
            continue
        if not verifier.verify(body, sig.signature):
            raise NoteError(f"the signature by {sig.name}+{sig.key_id.hex()} does not verify")
        if (sig.name, sig.key_id) not in seen:
            seen.add((sig.name, sig.key_id))
            signers.append(sig.name)
    if not signers:
        by = ", ".join(dict.fromkeys(unknown))
        raise NoteError(f"the note has no signature by a known key (it is signed by {by})")
    return OpenedNote(body, signers)


def _parse_size(text: str) -> int:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise NoteError(f"the checkpoint's tree size {text!r} is not a plain decimal number")
    return int(text)


@dataclass(frozen=True)
class Checkpoint:
    """A log's size and root hash under its origin (C2SP tlog-checkpoint note text)."""

    origin: str
    size: int
    root_hash: bytes
    #: Optional extension lines after the root hash, passed through as they are.
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("a checkpoint's origin must be one non-empty line")
        _check_text(self.origin.encode(), "the checkpoint's origin")
        if self.size < 0:
            raise NoteError(f"a checkpoint's size cannot be negative ({self.size})")
        if len(self.root_hash) != _ROOT_HASH_SIZE:
            raise NoteError(f"a checkpoint's root hash is 32 bytes, not {len(self.root_hash)}")
        for line in self.extensions:
            if not line or "\n" in line:
                raise NoteError("a checkpoint's extension lines must be non-empty single lines")
            _check_text(line.encode(), "a checkpoint extension line")

    def format(self) -> bytes:
        """The note text: origin, size and base64 root hash, one per line, then extensions."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines).encode()

    @classmethod
    def parse(cls, body: bytes) -> Checkpoint:
        """Read a checkpoint from a note text (the body :func:`open_note` returned)."""
        text = _check_text(body, "the checkpoint")
        if not text.endswith("\n"):
            raise NoteError("the checkpoint must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("a checkpoint has an origin, a size and a root hash line")
        origin, size_text, root_text, *extensions = lines
        root_hash = _b64decode(root_text, "the checkpoint's root hash")
        if len(root_hash) != _ROOT_HASH_SIZE or _b64encode(root_hash) != root_text:
            raise NoteError("the checkpoint's root hash is not 32 bytes in canonical base64")
        return cls(origin, _parse_size(size_text), root_hash, tuple(extensions))

    def sign(self, signers: Iterable[Signer]) -> bytes:
        """This checkpoint as a note signed by each signer."""
        return sign_note(self.format(), signers)


def verify_checkpoint(
    note: bytes, verifiers: Iterable[Verifier], origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and read it; with ``origin``, also require that origin."""
    checkpoint = Checkpoint.parse(open_note(note, verifiers).body)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"the checkpoint is from origin {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
