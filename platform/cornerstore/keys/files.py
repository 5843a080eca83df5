"""Private key files: made with mode 0600, replaced atomically, refused if others can read them."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

from cornerstore.crypto import KeyMaterialError


def refuse_if_shared(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyMaterialError(
            f"key file {path} is accessible to other users "
            f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )


def create_private(path: Path, content: bytes) -> bool:
    """Make ``path`` holding ``content``, unless it exists; True if this call made it.

    Two processes starting at once both try; one makes the file, the other
    uses it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def write_private(path: Path, content: bytes) -> None:
    """Replace ``path`` with ``content`` atomically, never visible to other users."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
