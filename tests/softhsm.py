"""SoftHSM2 for tests: a private token directory per test process, and fresh tokens on demand.

SoftHSM2 reads ``SOFTHSM2_CONF`` when the PKCS#11 module is initialised, and
a process initialises the module once: so each test process (each xdist
worker) gets one configuration and token directory for its whole session,
and tests are kept apart by giving each its own token. A module lists its
tokens only when initialised, so making a token rescans the module, which
needs every key provider on it to be closed first.

Without SoftHSM2 the tests that need it are skipped with a reason, except
under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE_CANDIDATES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/local/lib/softhsm/libsofthsm2.so"),
    Path("/opt/homebrew/lib/softhsm/libsofthsm2.so"),
)


def softhsm_module() -> Path | None:
    """The SoftHSM2 PKCS#11 module, resolved, or None."""
    override = os.environ.get("SOFTHSM2_MODULE")
    for candidate in (Path(override),) if override else MODULE_CANDIDATES:
        if candidate.is_file():
            return candidate.resolve()
    return None


def softhsm_missing() -> str | None:
    """Why SoftHSM2 tests cannot run here, or None when they can."""
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util is not installed (apt-get install softhsm2)"
    if softhsm_module() is None:
        return "the SoftHSM2 PKCS#11 module (libsofthsm2.so) was not found"
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        return "python-pkcs11 is not installed"
    return None


def softhsm_available() -> bool:
    return softhsm_missing() is None


@dataclass(frozen=True)
class Pkcs11Token:
    library: Path
    label: str
    pin: str


class SoftHsm:
    """One SoftHSM2 configuration and token directory, for one test process."""

    def __init__(self, root: Path, library: Path, util: str) -> None:
        self.library = library
        self.util = util
        self.config = root / "softhsm2.conf"
        tokens = root / "tokens"
        tokens.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )

    def init_token(self, label: str | None = None) -> Pkcs11Token:
        """A new, empty token with a user PIN, visible to this process at once.

        Every key provider on the module must be closed (rescanning ends their sessions).
        """
        from cornerstore.keys.pkcs11_login import rescan_tokens

        label = label or f"cs-test-{secrets.token_hex(6)}"
        pin = secrets.token_hex(8)
        subprocess.run(  # noqa: S603 (the installed softhsm2-util, our own arguments)
            [
                self.util,
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                pin,
                "--so-pin",
                secrets.token_hex(8),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "SOFTHSM2_CONF": str(self.config)},
        )
        rescan_tokens(self.library)
        return Pkcs11Token(self.library, label, pin)


def start_softhsm(root: Path) -> SoftHsm:
    """A SoftHSM2 under ``root`` with ``SOFTHSM2_CONF`` set for this process, or skip/fail."""
    reason = softhsm_missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: the PKCS#11 tests may not be skipped)")
        pytest.skip(reason)
    library, util = softhsm_module(), shutil.which("softhsm2-util")
    assert library is not None
    assert util is not None
    hsm = SoftHsm(root, library, util)
    os.environ["SOFTHSM2_CONF"] = str(hsm.config)
    return hsm


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """This process's SoftHSM2; ``softhsm.init_token()`` makes a fresh token for a test."""
    previous = os.environ.get("SOFTHSM2_CONF")
    yield start_softhsm(tmp_path_factory.mktemp("softhsm"))
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous
