"""A PKCS#11 token's sessions, and the one login per token a process may hold.

PKCS#11 logs in per token and per process, not per session: logging in twice
fails, and logging out (closing the session that logged in) logs every
session out. The providers of one process therefore share one login per
token, held by a session of its own that is closed with the last provider.
"""

from __future__ import annotations

import hmac
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pkcs11
from pkcs11.exceptions import (
    MultipleTokensReturned,
    NoSuchToken,
    PinExpired,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    PKCS11Error,
    UserAlreadyLoggedIn,
)

from cornerstore.crypto import KeyMaterialError

if TYPE_CHECKING:
    from pkcs11 import Session, Token
    from pkcs11._pkcs11 import lib as Module


@dataclass
class _Login:
    """One token's login in this process, shared by every provider open on it."""

    session: Session
    pin_digest: bytes
    users: int = 0


_logins: dict[tuple[str, int], _Login] = {}
_logins_lock = threading.Lock()
# Compares a later provider's PIN with the one that logged in, without keeping the PIN.
_pin_key = os.urandom(32)


def _pin_digest(pin: str) -> bytes:
    return hmac.digest(_pin_key, pin.encode(), "sha256")


def _module_path(library: Path) -> str:
    # One name per module file: loading it under two names would initialise it twice.
    return str(library.resolve())


def _module(library: Path) -> Module:
    if not library.is_file():
        raise KeyMaterialError(f"PKCS#11 module {library} does not exist")
    try:
        return pkcs11.lib(_module_path(library))
    except PKCS11Error as exc:
        raise KeyMaterialError(
            f"PKCS#11 module {library} could not be loaded or initialised "
            f"({type(exc).__name__}); check that it is a PKCS#11 module and that its own "
            "configuration (for SoftHSM2: SOFTHSM2_CONF) is readable"
        ) from exc


def rescan_tokens(library: Path) -> None:
    """Make this process see tokens initialised since it loaded ``library``.

    PKCS#11 modules list their tokens when initialised, so this finalises and
    initialises the module again, which ends every session on it: it is
    refused while any provider on the module is open. For tests and tools
    that initialise tokens; the hub never needs it.
    """
    module = _module(library)
    with _logins_lock:
        if any(so == module.so for so, _slot in _logins):
            raise KeyMaterialError(
                f"cannot rescan PKCS#11 module {library} while key providers on it are open"
            )
        module.reinitialize()


def _token(module: Module, library: Path, label: str) -> Token:
    try:
        return module.get_token(token_label=label)
    except NoSuchToken as exc:
        raise KeyMaterialError(
            f"PKCS#11 module {library} has no token labelled {label!r}; "
            "check CORNERSTORE_PKCS11_TOKEN_LABEL"
        ) from exc
    except MultipleTokensReturned as exc:
        raise KeyMaterialError(
            f"PKCS#11 module {library} has several tokens labelled {label!r}; "
            "give the hub's token a label of its own"
        ) from exc
    except PKCS11Error as exc:
        raise KeyMaterialError(
            f"could not list the tokens of PKCS#11 module {library} ({type(exc).__name__})"
        ) from exc


def _pin_refused(label: str, exc: PKCS11Error | None) -> KeyMaterialError:
    if isinstance(exc, PinLocked):
        return KeyMaterialError(
            f"the user PIN of PKCS#11 token {label!r} is locked; "
            "have the token's security officer unlock or reset it"
        )
    if isinstance(exc, PinExpired):
        return KeyMaterialError(f"the user PIN of PKCS#11 token {label!r} has expired")
    return KeyMaterialError(
        f"PKCS#11 token {label!r} refused the PIN; check CORNERSTORE_PKCS11_PIN "
        "(many HSMs lock the PIN after a few failed attempts)"
    )


def open_session(library: Path, label: str, pin: str) -> tuple[tuple[str, int], Session]:
    """A read-write session on the token, logged in through the process's shared login."""
    module = _module(library)
    token = _token(module, library, label)
    key = (module.so, token.slot.slot_id)
    digest = _pin_digest(pin)
    with _logins_lock:
        login = _logins.get(key)
        if login is None:
            try:
                anchor = token.open(rw=True, user_pin=pin)
            except (PinIncorrect, PinInvalid, PinLenRange, PinLocked, PinExpired) as exc:
                raise _pin_refused(label, exc) from None
            except UserAlreadyLoggedIn as exc:
                raise KeyMaterialError(
                    f"PKCS#11 token {label!r} is already logged in by other code in this "
                    "process; the hub must hold the token's only login"
                ) from exc
            except PKCS11Error as exc:
                raise KeyMaterialError(
                    f"could not log in to PKCS#11 token {label!r} ({type(exc).__name__})"
                ) from exc
            login = _logins[key] = _Login(anchor, digest)
        elif not hmac.compare_digest(login.pin_digest, digest):
            # The token is logged in already, so it would not check this PIN itself.
            raise _pin_refused(label, None)
        try:
            # A session opened without a PIN shares the login, and closing it logs nobody out.
            session = token.open(rw=True)
        except PKCS11Error as exc:
            if login.users == 0:
                _end_login(key)
            raise KeyMaterialError(
                f"could not open a session on PKCS#11 token {label!r} ({type(exc).__name__})"
            ) from exc
        login.users += 1
    return key, session


def _end_login(key: tuple[str, int]) -> None:
    login = _logins.pop(key)
    try:
        login.session.close()  # Logs out.
    except PKCS11Error:
        pass  # The module may already have dropped the session.


def release_login(key: tuple[str, int]) -> None:
    with _logins_lock:
        login = _logins.get(key)
        if login is None:
            return
        login.users -= 1
        if login.users <= 0:
            _end_login(key)
