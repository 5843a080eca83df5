"""The ``cornerstore`` command: serve, migrate, create principals, verify the audit log, demo."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from cornerstore.authz import PolicyError
from cornerstore.crypto import KeyMaterialError
from cornerstore.db import make_engine, session_scope
from cornerstore.migrations import NotMigrated, upgrade
from cornerstore.settings import get_settings

EXIT_REFUSED = 2


def _print(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _fail(message: str) -> int:
    sys.stderr.write(f"cornerstore: {message}\n")
    return EXIT_REFUSED


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cornerstore.hub import Hub

    # Open the hub once here so that a refusal (unmigrated database, missing
    # key) is one clear line, not a traceback from every worker.
    Hub.open(get_settings()).close()
    uvicorn.run(
        "cornerstore.app:serve_app",
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
    _print("database is at the newest revision")
    return 0


def cmd_principals_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from cornerstore.errors import ValidationFailed
    from cornerstore.hub import Hub
    from cornerstore.principals import service
    from cornerstore.principals.schemas import PrincipalIn

    try:
        body = PrincipalIn(name=args.name, role=args.role, shop_ids=args.shop or [])
    except ValidationError as exc:
        return _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    hub = Hub.open(get_settings())
    try:
        with session_scope(hub.sessions) as session:
            created = service.create(session, body)
    except ValidationFailed as exc:
        # e.g. a connector without --shop: one line for the operator, not a traceback.
        return _fail(exc.detail)
    finally:
        hub.close()
    if args.json:
        _print(
            json.dumps(
                {
                    "id": str(created.id),
                    "name": created.name,
                    "role": created.role.value,
                    "api_key": created.api_key,
                }
            )
        )
    else:
        _print(f"created {created.role.value} {created.name} ({created.id})")
        _print(f"API key (shown this once): {created.api_key}")
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
        _print(f"audit log intact: {report.entries_checked} entries verified")
        return 0
    _print(f"audit log FAILED verification at entry {report.first_bad_seq}: {report.problem}")
    checked = report.entries_checked
    _print(f"entries 1..{checked} verified before it" if checked else "no entry verified before it")
    return 1


def cmd_demo(args: argparse.Namespace) -> int:
    from cornerstore.demo import run_demo

    return run_demo(get_settings(), args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cornerstore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db", required=True)
    db.add_parser("upgrade", help="migrate to the newest revision").set_defaults(
        func=cmd_db_upgrade
    )

    principals = commands.add_parser("principals", help="API principals").add_subparsers(
        dest="principals", required=True
    )
    create = principals.add_parser("create", help="create a principal and print its API key once")
    create.add_argument(
        "--role", required=True, choices=["admin", "shopkeeper", "connector", "consumer", "auditor"]
    )
    create.add_argument("--name", required=True)
    create.add_argument("--shop", action="append", help="a shop id (repeat for several)")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(func=cmd_principals_create)

    audit = commands.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit", required=True
    )
    audit.add_parser(
        "verify", help="check that no entry was altered, removed or reordered"
    ).set_defaults(func=cmd_audit_verify)

    demo = commands.add_parser("demo", help="start on SQLite with demo shops, consumers and keys")
    demo.add_argument("--shops", type=int, default=50)
    demo.add_argument("--days", type=int, default=21)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--reset", action="store_true", help="delete the demo's database and master key first"
    )
    demo.add_argument("--no-serve", action="store_true", help="load the data and exit")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (NotMigrated, KeyMaterialError, PolicyError) as exc:
        return _fail(str(exc))
    return code


if __name__ == "__main__":
    sys.exit(main())
