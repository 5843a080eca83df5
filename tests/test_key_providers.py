"""The key providers' contract, checked on each: the key file and PKCS#11 (a SoftHSM2 token).

A provider keeps every key inside itself, keeps shops and master keys apart,
forgets a destroyed key for good (in every process), and refuses rather than
make a new master key once data may depend on the old one.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass
from pkcs11.exceptions import AttributeSensitive
from pydantic import SecretStr

from cornerstore.crypto import KeyMaterialError
from cornerstore.keys.bootstrap import open_provider
from cornerstore.keys.hsm import MASTER_LABEL, SHOP_LABEL, Pkcs11KeyProvider
from cornerstore.keys.localfile import LocalKeyProvider
from cornerstore.keys.provider import ShopKeyDestroyed, UnknownMasterKey
from cornerstore.settings import Environment, KeyProviderKind, Settings
from tests.softhsm import Pkcs11Token, SoftHsm

AAD = b"cornerstore/test|shop|1"
DATA_KEY = bytes(range(32))
Provider = LocalKeyProvider | Pkcs11KeyProvider


class Opener(Protocol):
    def __call__(self, may_create_master: bool) -> Provider: ...


@dataclass
class Backend:
    """One provider's backing store; every instance opened on it is closed after the test."""

    kind: str
    opener: Opener
    child_config: dict[str, str]
    token: Pkcs11Token | None = None
    opened: list[Provider] = field(default_factory=list)

    def open(self, *, may_create_master: bool = True) -> Provider:
        provider = self.opener(may_create_master)
        self.opened.append(provider)
        return provider


@pytest.fixture(params=["file", "pkcs11"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "file":
        master, store = tmp_path / "master.key", tmp_path / "shop-keys.db"
        result = Backend(
            "file",
            lambda may: LocalKeyProvider(master, store, may_create_master=may),
            {"master": str(master), "store": str(store)},
        )
    else:
        hsm: SoftHsm = request.getfixturevalue("softhsm")
        token = hsm.init_token()
        result = Backend(
            "pkcs11",
            lambda may: Pkcs11KeyProvider(
                token.library, token.label, token.pin, may_create_master=may
            ),
            {"library": str(token.library), "label": token.label, "pin": token.pin},
            token,
        )
    yield result
    for provider in reversed(result.opened):
        provider.close()


@pytest.fixture
def provider(backend: Backend) -> Provider:
    return backend.open()


def only_master(provider: Provider) -> str:
    (master_id,) = provider.master_ids()
    return master_id


def refuses_to_open(call: Any, *args: Any) -> KeyMaterialError:
    """``call(*args)`` raises exactly KeyMaterialError: the bytes do not open, no key is gone."""
    with pytest.raises(KeyMaterialError) as excinfo:
        call(*args)
    assert type(excinfo.value) is KeyMaterialError
    return excinfo.value


def altered(sealed: bytes) -> list[bytes]:
    flip = [bytes([sealed[i] ^ 1]) for i in range(len(sealed))]
    return [
        flip[0] + sealed[1:],  # nonce
        sealed[:12] + flip[12] + sealed[13:],  # ciphertext
        sealed[:-1] + flip[-1],  # tag
        sealed[:-1],  # truncated tag
        sealed[:28],  # nonce and tag's worth of bytes only
        sealed + b"\0",
    ]


# --- round trips and separation ------------------------------------------------------------


def test_a_data_key_round_trips_through_shop_and_master_keys(provider: Provider) -> None:
    shop = uuid.uuid4()
    provider.create_shop_key(shop)
    master = only_master(provider)

    inner = provider.shop_encrypt(shop, DATA_KEY, AAD)
    outer = provider.master_encrypt(master, inner, AAD)

    assert len(inner) == 12 + len(DATA_KEY) + 16  # nonce, ciphertext, tag
    assert DATA_KEY not in inner
    assert inner not in outer
    assert provider.master_decrypt(master, outer, AAD) == inner
    assert provider.shop_decrypt(shop, inner, AAD) == DATA_KEY
    # A fresh nonce every time: the same plaintext never seals the same way twice.
    assert provider.shop_encrypt(shop, DATA_KEY, AAD)[:12] != inner[:12]
    assert provider.master_encrypt(master, inner, AAD)[:12] != outer[:12]
    assert provider.shop_decrypt(shop, provider.shop_encrypt(shop, b"", AAD), AAD) == b""


def test_wrong_associated_data_or_altered_bytes_do_not_open(provider: Provider) -> None:
    shop = uuid.uuid4()
    provider.create_shop_key(shop)
    master = only_master(provider)
    inner = provider.shop_encrypt(shop, DATA_KEY, AAD)
    outer = provider.master_encrypt(master, DATA_KEY, AAD)

    message = refuses_to_open(provider.shop_decrypt, shop, inner, AAD + b"x")
    assert DATA_KEY.hex() not in str(message)
    refuses_to_open(provider.shop_decrypt, shop, inner, b"")
    refuses_to_open(provider.master_decrypt, master, outer, AAD[:-1])
    for bad in altered(inner):
        refuses_to_open(provider.shop_decrypt, shop, bad, AAD)
    for bad in altered(outer):
        refuses_to_open(provider.master_decrypt, master, bad, AAD)
    # Nothing was spoiled by the failures.
    assert provider.shop_decrypt(shop, inner, AAD) == DATA_KEY
    assert provider.master_decrypt(master, outer, AAD) == DATA_KEY


def test_bytes_too_short_to_hold_a_nonce_do_not_open(backend: Backend) -> None:
    provider = backend.open()
    shop = uuid.uuid4()
    provider.create_shop_key(shop)
    for bad in (b"", b"\0" * 5):
        refuses_to_open(provider.shop_decrypt, shop, bad, AAD)
        refuses_to_open(provider.master_decrypt, only_master(provider), bad, AAD)


def test_a_ciphertext_for_one_shop_does_not_open_as_another(provider: Provider) -> None:
    shop_a, shop_b = uuid.uuid4(), uuid.uuid4()
    provider.create_shop_key(shop_a)
    provider.create_shop_key(shop_b)
    sealed_for_a = provider.shop_encrypt(shop_a, DATA_KEY, AAD)

    refuses_to_open(provider.shop_decrypt, shop_b, sealed_for_a, AAD)
    with pytest.raises(ShopKeyDestroyed):
        provider.shop_decrypt(uuid.uuid4(), sealed_for_a, AAD)
    assert provider.shop_decrypt(shop_a, sealed_for_a, AAD) == DATA_KEY


def test_a_ciphertext_under_one_master_does_not_open_under_another(provider: Provider) -> None:
    first = only_master(provider)
    second = provider.create_master()
    sealed = provider.master_encrypt(first, DATA_KEY, AAD)

    refuses_to_open(provider.master_decrypt, second, sealed, AAD)
    assert provider.master_decrypt(first, sealed, AAD) == DATA_KEY


def test_unknown_master_ids_are_refused(provider: Provider) -> None:
    sealed = provider.master_encrypt(only_master(provider), DATA_KEY, AAD)
    for master_id in ("0" * 16, "not-a-hex-id!!!!", "", "ab"):
        with pytest.raises(UnknownMasterKey):
            provider.master_decrypt(master_id, sealed, AAD)
        with pytest.raises(UnknownMasterKey):
            provider.master_encrypt(master_id, DATA_KEY, AAD)


# --- shop keys ------------------------------------------------------------------------------


def test_creating_a_shop_key_keeps_the_one_it_has(provider: Provider) -> None:
    shop, other, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert not provider.has_shop_key(shop)
    provider.create_shop_key(shop)
    sealed = provider.shop_encrypt(shop, DATA_KEY, AAD)

    provider.create_shop_key(shop)
    provider.create_shop_keys([shop, other, third, other])

    assert provider.shop_decrypt(shop, sealed, AAD) == DATA_KEY
    assert provider.has_shop_key(other)
    assert provider.has_shop_key(third)
    refuses_to_open(provider.shop_decrypt, other, sealed, AAD)


def test_a_destroyed_shop_key_never_opens_its_data_again(provider: Provider) -> None:
    erased, kept = uuid.uuid4(), uuid.uuid4()
    provider.create_shop_key(erased)
    provider.create_shop_key(kept)
    sealed = provider.shop_encrypt(erased, DATA_KEY, AAD)
    sealed_kept = provider.shop_encrypt(kept, DATA_KEY, AAD)

    provider.destroy_shop_key(erased)

    assert not provider.has_shop_key(erased)
    with pytest.raises(ShopKeyDestroyed):
        provider.shop_decrypt(erased, sealed, AAD)
    with pytest.raises(ShopKeyDestroyed):
        provider.shop_encrypt(erased, DATA_KEY, AAD)
    provider.destroy_shop_key(erased)  # Destroying a missing key is not an error.
    provider.destroy_shop_key(uuid.uuid4())
    assert provider.shop_decrypt(kept, sealed_kept, AAD) == DATA_KEY

    # A new key for the same shop is a new key: the old data stay unreadable.
    provider.create_shop_key(erased)
    assert provider.has_shop_key(erased)
    refuses_to_open(provider.shop_decrypt, erased, sealed, AAD)
    fresh = provider.shop_encrypt(erased, DATA_KEY, AAD)
    assert provider.shop_decrypt(erased, fresh, AAD) == DATA_KEY


# --- master keys ----------------------------------------------------------------------------


def test_master_rotation_keeps_old_data_until_the_old_key_is_destroyed(
    provider: Provider,
) -> None:
    old = only_master(provider)
    sealed_old = provider.master_encrypt(old, DATA_KEY, AAD)

    new = provider.create_master()

    assert len(new) == 16
    int(new, 16)
    assert provider.master_ids() == {old, new}
    assert provider.master_decrypt(old, sealed_old, AAD) == DATA_KEY
    sealed_new = provider.master_encrypt(new, DATA_KEY, AAD)
    assert provider.master_decrypt(new, sealed_new, AAD) == DATA_KEY

    provider.destroy_master(old)

    assert provider.master_ids() == {new}
    with pytest.raises(UnknownMasterKey):
        provider.master_decrypt(old, sealed_old, AAD)
    with pytest.raises(UnknownMasterKey):
        provider.master_encrypt(old, DATA_KEY, AAD)
    with pytest.raises(KeyMaterialError, match="last master key"):
        provider.destroy_master(new)
    assert provider.master_ids() == {new}
    assert provider.master_decrypt(new, sealed_new, AAD) == DATA_KEY


def test_a_missing_master_key_is_refused_not_replaced(backend: Backend) -> None:
    with pytest.raises(KeyMaterialError, match="restore") as excinfo:
        backend.open(may_create_master=False)
    if backend.token is not None:
        assert backend.token.label in str(excinfo.value)
    with pytest.raises(KeyMaterialError):  # Nothing was made by the refusal.
        backend.open(may_create_master=False)

    first = backend.open(may_create_master=True)
    master = only_master(first)
    assert only_master(backend.open(may_create_master=False)) == master
    assert only_master(backend.open(may_create_master=True)) == master  # no second one made


# --- other instances and processes ----------------------------------------------------------


def test_a_second_instance_sees_the_first_ones_changes(backend: Backend) -> None:
    first = backend.open()
    second = backend.open(may_create_master=False)
    old = only_master(first)
    assert second.master_ids() == {old}

    # Shop keys made by the first.
    shop, other, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first.create_shop_keys([shop, other, third])
    assert second.has_shop_key(shop)
    sealed = first.shop_encrypt(shop, DATA_KEY, AAD)
    sealed_other = second.shop_encrypt(other, DATA_KEY, AAD)
    assert second.shop_decrypt(shop, sealed, AAD) == DATA_KEY
    assert first.shop_decrypt(other, sealed_other, AAD) == DATA_KEY
    assert second.has_shop_key(third)

    # A master key made by the first opens in the second before it lists its keys again.
    new = first.create_master()
    assert second.master_decrypt(new, first.master_encrypt(new, DATA_KEY, AAD), AAD) == DATA_KEY
    assert first.master_decrypt(new, second.master_encrypt(new, DATA_KEY, AAD), AAD) == DATA_KEY
    assert second.master_ids() == {old, new}

    # Shop keys destroyed by the first stop working in the second, which had used them.
    for destroyed in shop, other, third:
        first.destroy_shop_key(destroyed)
    with pytest.raises(ShopKeyDestroyed):
        second.shop_decrypt(shop, sealed, AAD)
    with pytest.raises(ShopKeyDestroyed):
        second.shop_encrypt(other, DATA_KEY, AAD)
    assert not second.has_shop_key(third)

    # A key the first makes again for the shop is the one the second uses from then on.
    first.create_shop_key(other)
    assert second.has_shop_key(other)
    again = second.shop_encrypt(other, DATA_KEY, AAD)
    assert first.shop_decrypt(other, again, AAD) == DATA_KEY
    refuses_to_open(second.shop_decrypt, other, sealed_other, AAD)


def test_closing_one_instance_leaves_the_others_working(backend: Backend) -> None:
    first = backend.open()
    second = backend.open()
    shop = uuid.uuid4()
    first.create_shop_key(shop)
    sealed = first.shop_encrypt(shop, DATA_KEY, AAD)

    first.close()

    assert second.shop_decrypt(shop, sealed, AAD) == DATA_KEY
    third = backend.open(may_create_master=False)
    assert third.shop_decrypt(shop, second.shop_encrypt(shop, DATA_KEY, AAD), AAD) == DATA_KEY


_CHILD = """
import json, sys, uuid
from pathlib import Path

config = json.load(sys.stdin)
if config["kind"] == "file":
    from cornerstore.keys.localfile import LocalKeyProvider

    provider = LocalKeyProvider(
        Path(config["master"]), Path(config["store"]), may_create_master=False
    )
else:
    from cornerstore.keys.hsm import Pkcs11KeyProvider

    provider = Pkcs11KeyProvider(
        Path(config["library"]), config["label"], config["pin"], may_create_master=False
    )
shop, aad = uuid.UUID(config["shop"]), config["aad"].encode()
report = {
    "masters": sorted(provider.master_ids()),
    "opened": provider.shop_decrypt(shop, bytes.fromhex(config["sealed"]), aad).hex(),
}
report["new_master"] = new = provider.create_master()
report["sealed"] = provider.master_encrypt(new, b"from the child", aad).hex()
provider.destroy_shop_key(shop)
provider.close()
print(json.dumps(report))
"""


def test_another_process_shares_the_keys(backend: Backend) -> None:
    provider = backend.open()
    master = only_master(provider)
    shop = uuid.uuid4()
    provider.create_shop_key(shop)
    sealed = provider.shop_encrypt(shop, DATA_KEY, AAD)
    config = {
        "kind": backend.kind,
        **backend.child_config,
        "shop": str(shop),
        "sealed": sealed.hex(),
        "aad": AAD.decode(),
    }

    child = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", _CHILD],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report["masters"] == [master]
    assert bytes.fromhex(report["opened"]) == DATA_KEY
    new = report["new_master"]
    assert provider.master_decrypt(new, bytes.fromhex(report["sealed"]), AAD) == b"from the child"
    assert provider.master_ids() == {master, new}
    with pytest.raises(ShopKeyDestroyed):
        provider.shop_decrypt(shop, sealed, AAD)


def test_threads_share_one_instance(provider: Provider) -> None:
    master = only_master(provider)
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(40):
                shop = uuid.uuid4()
                provider.create_shop_key(shop)
                inner = provider.shop_encrypt(shop, DATA_KEY, AAD)
                outer = provider.master_encrypt(master, inner, AAD)
                assert provider.shop_decrypt(shop, provider.master_decrypt(master, outer, AAD), AAD)
                assert master in provider.master_ids()
                provider.destroy_shop_key(shop)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# --- keys stay inside the provider ----------------------------------------------------------


def test_key_material_is_not_extractable(backend: Backend) -> None:
    provider = backend.open()
    shop = uuid.uuid4()
    provider.create_shop_key(shop)
    provider.create_shop_key(shop)
    provider.create_shop_keys([shop])
    provider.create_master()
    masters = provider.master_ids()
    assert all(master not in provider.describe() for master in masters)

    if isinstance(provider, LocalKeyProvider):
        for path in backend.child_config["master"], backend.child_config["store"]:
            assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
        return

    assert backend.token is not None
    assert backend.token.pin not in provider.describe()
    token = pkcs11.lib(str(backend.token.library)).get_token(token_label=backend.token.label)
    # A session without a PIN of its own shares the provider's login (and logs nobody out).
    with token.open() as session:
        keys = list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}))
        found = sorted((key[Attribute.LABEL], bytes(key[Attribute.ID])) for key in keys)
        assert found == sorted(
            [(SHOP_LABEL, shop.bytes)]
            + [(MASTER_LABEL, bytes.fromhex(master)) for master in masters]
        )
        for key in keys:
            assert key.get_attributes(
                [
                    Attribute.TOKEN,
                    Attribute.PRIVATE,
                    Attribute.SENSITIVE,
                    Attribute.ALWAYS_SENSITIVE,
                    Attribute.EXTRACTABLE,
                    Attribute.NEVER_EXTRACTABLE,
                    Attribute.WRAP,
                    Attribute.UNWRAP,
                    Attribute.VALUE_LEN,
                ]
            ) == {
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.ALWAYS_SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.NEVER_EXTRACTABLE: True,
                Attribute.WRAP: False,
                Attribute.UNWRAP: False,
                Attribute.VALUE_LEN: 32,
            }
            with pytest.raises(AttributeSensitive):
                key[Attribute.VALUE]


# --- PKCS#11 only: opening the token --------------------------------------------------------


def _refusal_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def test_pkcs11_wrong_pin_is_refused_without_repeating_it(softhsm: SoftHsm) -> None:
    token = softhsm.init_token()
    wrong = "wrong-pin-5d1e9c"

    # Nobody is logged in: the token itself refuses the PIN.
    with pytest.raises(KeyMaterialError, match="PIN") as excinfo:
        Pkcs11KeyProvider(token.library, token.label, wrong, may_create_master=True)
    assert token.label in str(excinfo.value)
    assert wrong not in _refusal_text(excinfo.value)
    assert token.pin not in _refusal_text(excinfo.value)

    # The process is logged in already: the provider compares the PIN itself.
    provider = Pkcs11KeyProvider(token.library, token.label, token.pin, may_create_master=True)
    try:
        with pytest.raises(KeyMaterialError, match="PIN") as excinfo:
            Pkcs11KeyProvider(token.library, token.label, wrong, may_create_master=True)
        assert wrong not in _refusal_text(excinfo.value)
        assert token.pin not in _refusal_text(excinfo.value)
        assert provider.master_ids()  # still logged in
    finally:
        provider.close()


def test_pkcs11_missing_token_or_module_is_refused_clearly(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    token = softhsm.init_token()
    with pytest.raises(KeyMaterialError, match="no token labelled 'no-such-token'"):
        Pkcs11KeyProvider(token.library, "no-such-token", token.pin, may_create_master=True)
    missing = tmp_path / "missing.so"
    with pytest.raises(KeyMaterialError, match=f"{missing} does not exist"):
        Pkcs11KeyProvider(missing, token.label, token.pin, may_create_master=True)
    not_a_module = tmp_path / "not-a-module.so"
    not_a_module.write_text("hello")
    with pytest.raises(KeyMaterialError, match="could not be loaded") as excinfo:
        Pkcs11KeyProvider(not_a_module, token.label, token.pin, may_create_master=True)
    assert token.pin not in _refusal_text(excinfo.value)


def test_pkcs11_is_chosen_and_described_by_the_settings(softhsm: SoftHsm, tmp_path: Path) -> None:
    token = softhsm.init_token()
    settings = Settings(
        environment=Environment.test,
        data_dir=tmp_path,
        key_provider=KeyProviderKind.pkcs11,
        pkcs11_library=token.library,
        pkcs11_token_label=token.label,
        pkcs11_pin=SecretStr(token.pin),
    )
    provider = open_provider(settings, may_create_master=True)
    try:
        assert isinstance(provider, Pkcs11KeyProvider)
        assert provider.kind == "pkcs11"
        assert provider.describe() == f"PKCS#11 token '{token.label}' (module {token.library})"
        assert len(provider.master_ids()) == 1
    finally:
        provider.close()


def test_pkcs11_a_master_key_destroyed_elsewhere_is_unknown(softhsm: SoftHsm) -> None:
    token = softhsm.init_token()
    first = Pkcs11KeyProvider(token.library, token.label, token.pin, may_create_master=True)
    second = Pkcs11KeyProvider(token.library, token.label, token.pin, may_create_master=False)
    try:
        old = only_master(first)
        sealed = first.master_encrypt(old, DATA_KEY, AAD)
        assert second.master_decrypt(old, sealed, AAD) == DATA_KEY  # the handle is cached now
        first.create_master()
        first.destroy_master(old)
        with pytest.raises(UnknownMasterKey):
            second.master_decrypt(old, sealed, AAD)
        with pytest.raises(UnknownMasterKey):
            second.master_encrypt(old, DATA_KEY, AAD)
    finally:
        second.close()
        first.close()
