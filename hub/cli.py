"""The ``cornerstore`` command: serve, migrate, create principals, verify the audit log, demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from audit_verifier.__main__ import add_consistency_arguments, add_export_arguments
from cornerstore.authz import PolicyError
from cornerstore.crypto import KeyMaterialError
from cornerstore.db import make_engine
from cornerstore.migrations import NotMigrated, upgrade
from cornerstore.settings import get_settings
from hub.console import fail, say
from hub.principals.commands import add_commands as _add_principals
from hub.stream_commands import add_commands as _add_stream


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hub.runtime import Hub

    # Open the hub once here so that a refusal (unmigrated database, missing
    # key) is one clear line, not a traceback from every worker.
    Hub.open(get_settings()).close()
    uvicorn.run(
        "hub.app:serve_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=get_settings().log_level.lower(),
    )
    return 0


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    say("database is at the newest revision")
    return 0


def cmd_audit_verify(_args: argparse.Namespace) -> int:
    from audit import service as audit
    from cornerstore.db import make_sessionmaker
    from cornerstore.migrations import assert_migrated

    settings = get_settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        # An unmigrated database is one line naming `cornerstore db upgrade` (see main).
        assert_migrated(engine)
        with make_sessionmaker(engine)() as session:
            report = audit.verify(session)
    finally:
        engine.dispose()
    if report.ok:
        say(f"audit log intact: {report.entries_checked} entries verified")
        return 0
    say(f"audit log FAILED verification at entry {report.first_bad_seq}: {report.problem}")
    checked = report.entries_checked
    say(f"entries 1..{checked} verified before it" if checked else "no entry verified before it")
    return 1


class _KeyTools:
    """The database and key ring, without the rest of a hub, for the ``keys`` commands.

    Unlike a serving hub it accepts data keys wrapped before shops had their
    own key-encryption keys: ``rotate-master`` is what upgrades them.
    """

    def __init__(self) -> None:
        import cornerstore.models  # noqa: F401 (every table, so that foreign keys resolve)
        from cornerstore.db import make_sessionmaker
        from cornerstore.keys.bootstrap import open_keyring
        from cornerstore.migrations import assert_migrated

        settings = get_settings()
        self.engine = make_engine(settings.sqlalchemy_url)
        try:
            assert_migrated(self.engine)
            self.keyring = open_keyring(settings, self.engine, allow_legacy=True)
        except BaseException:
            self.engine.dispose()
            raise
        self.sessions = make_sessionmaker(self.engine)

    def __enter__(self) -> _KeyTools:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.keyring.provider.close()
        self.engine.dispose()


def _progress_bar(description: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(desc=description, unit="key", file=sys.stderr, total=0)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def cmd_keys_rotate_master(args: argparse.Namespace) -> int:
    from cornerstore.keys import rotation

    with _KeyTools() as tools:
        begun = rotation.begin_master_rotation(tools.sessions, tools.keyring)
        old = ", ".join(sorted(begun.retiring))
        verb = "resuming the rotation" if begun.resumed else "rotating"
        say(f"{verb} from master key {old} to {begun.active}")
        update, close = _progress_bar("re-wrapping data keys")
        try:
            moved = rotation.rewrap_all(
                tools.sessions,
                tools.keyring,
                begun,
                batch_size=args.batch_size,
                pause=args.pause,
                progress=update,
            )
        finally:
            close()
        rotation.finish_master_rotation(tools.sessions, tools.keyring, begun)
    say(f"re-wrapped {moved} data keys; master key {begun.active} is active, {old} destroyed")
    say("back up the key material now: older backups need the old key, this one the new")
    return 0


def cmd_keys_rotate_shop(args: argparse.Namespace) -> int:
    import uuid

    from cornerstore.keys import rotation
    from cornerstore.keys.ring import UnknownShopKey

    try:
        shop_id = uuid.UUID(args.shop)
    except ValueError:
        return fail(f"not a shop id: {args.shop}")
    with _KeyTools() as tools:
        try:
            version = rotation.rotate_shop(tools.sessions, tools.keyring, shop_id)
        except UnknownShopKey:
            return fail(f"shop {shop_id} has no data key (no such shop, or it was erased)")
        say(f"shop {shop_id}: new writes use data key version {version}")
        if args.reencrypt:
            update, close = _progress_bar("re-encrypting records")
            try:
                moved = rotation.reencrypt_shop(
                    tools.sessions,
                    tools.keyring,
                    shop_id,
                    batch_size=args.batch_size,
                    settle=tools.keyring.current_ttl,
                    progress=update,
                )
            finally:
                close()
            say(f"re-encrypted {moved} records to data key version {version}")
    return 0


def cmd_keys_status(_args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from cornerstore.models.keys import MasterKeyRecord, ShopKey
    from cornerstore.models.shops import ShopErasure

    with _KeyTools() as tools, tools.sessions() as session:
        say(f"key provider: {tools.keyring.provider.describe()}")
        for record in session.scalars(select(MasterKeyRecord).order_by(MasterKeyRecord.created_at)):
            count = session.scalar(select(func.count()).where(ShopKey.master_key_id == record.id))
            say(f"master key {record.id}: {record.state}, wraps {count} data keys")
        legacy = session.scalar(select(func.count()).where(ShopKey.wrap_format == 1))
        if legacy:
            say(f"{legacy} data keys predate shop key-encryption keys: run keys rotate-master")
        pending = session.scalar(
            select(func.count()).where(ShopErasure.keys_destroyed_at.is_(None))
        )
        say(f"erasures waiting for key destruction: {pending}")
    return 0


def cmd_keys_finish_erasures(_args: argparse.Namespace) -> int:
    from hub.shops import erasure

    with _KeyTools() as tools:
        left = erasure.finish_pending(tools.sessions, tools.keyring)
    if left:
        return fail(f"{len(left)} erasures still wait for key destruction; see the log")
    say("every erased shop's key is destroyed")
    return 0


def cmd_audit_verify_export(args: argparse.Namespace) -> int:
    """Offline: needs no server and no database, only the files and the public key."""
    from audit_verifier.__main__ import run_export

    return run_export(args, "cornerstore")


def cmd_audit_verify_consistency(args: argparse.Namespace) -> int:
    from audit_verifier.__main__ import run_consistency

    return run_consistency(args, "cornerstore")


def cmd_audit_rotate_signing_key(_args: argparse.Namespace) -> int:
    from audit import checkpoints, signing
    from hub.runtime import Hub

    settings = get_settings()
    signer = signing.rotate(settings.audit_signing_key_path, settings.audit_log_origin)
    hub = Hub.open(settings)
    try:
        with hub.sessions() as session:
            checkpoints.sign_latest(session, signer)
    finally:
        hub.close()
    say(f"new checkpoint-signing key: {signer.verifier_key}")
    say("older checkpoints still verify with the earlier keys at /v1/audit/public-key")
    return 0


def cmd_keys_rotate_receipt_key(_args: argparse.Namespace) -> int:
    from consent import receipts
    from hub.runtime import Hub

    settings = get_settings()
    receipts.rotate(settings.receipt_signing_key_path)
    # Opening the hub publishes the new key, and retires the old one in the JWKS.
    hub = Hub.open(settings)
    try:
        kid = hub.receipt_signer.kid
    finally:
        hub.close()
    say(f"new consent-receipt signing key: kid {kid}")
    say("older receipts still verify with the earlier keys at /v1/keys/receipts")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hub.demo import run_demo

    return run_demo(get_settings(), args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cornerstore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_serving, _add_principals, _add_stream, _add_audit, _add_keys, _add_demo):
        add(commands)
    return parser


def _add_serving(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """serve, db upgrade"""
    serve = commands.add_parser("serve", help="start the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db", required=True)
    db.add_parser("upgrade", help="migrate to the newest revision").set_defaults(
        func=cmd_db_upgrade
    )


def _add_audit(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """audit verify, verify-export, verify-consistency, rotate-signing-key"""
    audit = commands.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit", required=True
    )
    audit.add_parser(
        "verify", help="check that no entry was altered, removed or reordered"
    ).set_defaults(func=cmd_audit_verify)
    verify_export = audit.add_parser(
        "verify-export", help="offline: check an export against a signed checkpoint"
    )
    add_export_arguments(verify_export)
    verify_export.set_defaults(func=cmd_audit_verify_export)
    verify_consistency = audit.add_parser(
        "verify-consistency", help="offline: check that a newer checkpoint extends an older one"
    )
    add_consistency_arguments(verify_consistency)
    verify_consistency.set_defaults(func=cmd_audit_verify_consistency)
    audit.add_parser(
        "rotate-signing-key", help="start signing checkpoints with a new key"
    ).set_defaults(func=cmd_audit_rotate_signing_key)


def _add_keys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """keys rotate-master, rotate-shop, rotate-receipt-key, status, finish-erasures"""
    keys = commands.add_parser("keys", help="master and data keys").add_subparsers(
        dest="keys", required=True
    )
    rotate_master = keys.add_parser(
        "rotate-master",
        help="re-wrap every data key under a new master key (online, resumable)",
    )
    rotate_master.add_argument("--batch-size", type=int, default=500)
    rotate_master.add_argument(
        "--pause", type=float, default=0.0, help="seconds to wait between batches, to go gently"
    )
    rotate_master.set_defaults(func=cmd_keys_rotate_master)
    rotate_shop = keys.add_parser(
        "rotate-shop", help="start a new data key for a shop's new writes"
    )
    rotate_shop.add_argument("shop", help="the shop's id")
    rotate_shop.add_argument(
        "--reencrypt",
        action="store_true",
        help="also move old records to the new key (old versions stay for late writes)",
    )
    rotate_shop.add_argument("--batch-size", type=int, default=500)
    rotate_shop.set_defaults(func=cmd_keys_rotate_shop)
    keys.add_parser(
        "rotate-receipt-key", help="start signing consent receipts with a new key"
    ).set_defaults(func=cmd_keys_rotate_receipt_key)
    keys.add_parser("status", help="master keys, what they wrap, pending erasures").set_defaults(
        func=cmd_keys_status
    )
    keys.add_parser(
        "finish-erasures", help="destroy the keys of erasures that were interrupted"
    ).set_defaults(func=cmd_keys_finish_erasures)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """demo"""
    demo = commands.add_parser("demo", help="start on SQLite with demo shops, consumers and keys")
    demo.add_argument("--shops", type=int, default=50)
    demo.add_argument("--days", type=int, default=21)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--reset", action="store_true", help="delete the demo's database and master key first"
    )
    demo.add_argument("--no-serve", action="store_true", help="load the data and exit")
    demo.add_argument(
        "--keys-file",
        type=Path,
        help="also write the new keys as JSON to this file (this user's alone), for scripts",
    )
    demo.set_defaults(func=cmd_demo)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (NotMigrated, KeyMaterialError, PolicyError) as exc:
        return fail(str(exc))
    return code


if __name__ == "__main__":
    sys.exit(main())
