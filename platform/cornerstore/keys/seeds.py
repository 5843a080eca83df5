"""Ed25519 signing-key files: 32-byte seeds back to back, the last one signs.

Checkpoint keys and consent-receipt keys are kept this way. The file is made
(mode 0600) on first use; rotating appends a seed, so a running process that
follows the file (see :func:`stamp`) signs with the new key from then on,
and the old seeds stay only as long as an operator keeps them.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from cornerstore.crypto import KeyMaterialError
from cornerstore.keys.files import create_private, refuse_if_shared, write_private

SEED_BYTES = 32


def _new_seed() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )


def seeds(path: Path, what: str) -> list[bytes]:
    """Every seed in the file, oldest first; refused if others may read it or it is damaged."""
    refuse_if_shared(path)
    raw = path.read_bytes()
    if not raw or len(raw) % SEED_BYTES:
        raise KeyMaterialError(f"{what} file {path} does not hold 32-byte keys")
    return [raw[i : i + SEED_BYTES] for i in range(0, len(raw), SEED_BYTES)]


def current(path: Path, what: str) -> Ed25519PrivateKey:
    """The key that signs now, the file made with a new key first if there is none."""
    create_private(path, _new_seed())
    return Ed25519PrivateKey.from_private_bytes(seeds(path, what)[-1])


def rotate(path: Path, what: str) -> None:
    """Append a new key: it signs from now on."""
    write_private(path, b"".join([*seeds(path, what), _new_seed()]))


def stamp(path: Path) -> tuple[int, int, int]:
    """What changes when the file is rotated.

    Size and inode too: a rotation within the file system's timestamp
    granularity can leave the mtime as it was, never the size.
    """
    status = path.stat()
    return status.st_mtime_ns, status.st_ino, status.st_size
