"""``cornerstore principals …``: the operator's hand on principals (create, list,
disable, rotate-key, sign-in-link).

The CLI acts as the operator: its changes are audited under the role
``operator``, through the same service the API's admin endpoints call.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from cornerstore.db import session_scope, utcnow
from cornerstore.errors import Conflict, NotFound, ValidationFailed
from cornerstore.models.principals import Role
from cornerstore.settings import get_settings
from hub.console import fail, say
from hub.principals import service
from hub.principals.schemas import PrincipalIn

_GRACE: TypeAdapter[timedelta] = TypeAdapter(timedelta)


@contextmanager
def _session() -> Iterator[Session]:
    from hub.runtime import Hub

    hub = Hub.open(get_settings())
    try:
        with session_scope(hub.sessions) as session:
            yield session
    finally:
        hub.close()


def cmd_create(args: argparse.Namespace) -> int:
    try:
        body = PrincipalIn(name=args.name, role=args.role, shop_ids=args.shop or [])
    except ValidationError as exc:
        return fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    try:
        with _session() as session:
            created = service.create(session, body)
    except ValidationFailed as exc:
        # e.g. a connector without --shop: one line for the operator, not a traceback.
        return fail(exc.detail)
    if args.json:
        say(
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
        say(f"created {created.role.value} {created.name} ({created.id})")
        say(f"API key (shown this once): {created.api_key}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    after: uuid.UUID | None = None
    with _session() as session:
        while True:
            page = service.list_page(
                session, role=args.role, shop_id=args.shop, after=after, limit=500
            )
            for p in page.principals:
                if args.json:
                    say(p.model_dump_json())
                else:
                    state = f"disabled {p.disabled_at:%Y-%m-%d %H:%M}" if p.disabled_at else ""
                    shops = ",".join(str(s) for s in p.shop_ids)
                    say(f"{p.id}  {p.role.value:<10}  {p.name}  {shops}  {state}".rstrip())
            if page.next is None:
                return 0
            after = uuid.UUID(page.next)


def cmd_disable(args: argparse.Namespace) -> int:
    try:
        with _session() as session:
            out = service.disable(session, args.id, by=None, policy_version=None, now=utcnow())
    except NotFound:
        return fail(f"no principal {args.id}")
    say(f"disabled {out.id} at {out.disabled_at.isoformat()}; its keys answer 401 from now on")
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    try:
        grace = _GRACE.validate_python(args.grace)
    except ValidationError:
        return fail(f"--grace {args.grace!r} is not an ISO 8601 duration such as PT24H or PT0S")
    if not timedelta(0) <= grace <= service.MAX_GRACE:
        return fail("--grace runs from PT0S to P30D")
    try:
        with _session() as session:
            out = service.rotate_key(
                session, args.id, grace=grace, by=None, policy_version=None, now=utcnow()
            )
    except NotFound:
        return fail(f"no principal {args.id}")
    except Conflict as exc:
        return fail(exc.detail)
    if args.json:
        say(out.model_dump_json())
    else:
        say(f"new API key for {out.id} (shown this once): {out.api_key}")
        say(f"its earlier keys stop working at {out.previous_keys_expire_at.isoformat()}")
    return 0


def cmd_sign_in_link(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        with _session() as session:
            ids = service.ids_named(session, args.who)
            if len(ids) != 1:
                found = ", ".join(str(i) for i in ids)
                return fail(
                    f"{len(ids)} principals are named {args.who!r}"
                    + (f" ({found}): give the id" if ids else "")
                )
            out = service.sign_in_link(
                session,
                ids[0],
                public_url=settings.public_url,
                valid_for=settings.sign_in_link_valid_for,
                by=None,
                policy_version=None,
                now=utcnow(),
            )
    except Conflict as exc:
        return fail(exc.detail)
    say(out.url)
    say(f"open it once, before {out.expires_at.isoformat()}")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """principals create, list, disable, rotate-key, sign-in-link"""
    principals = commands.add_parser("principals", help="API principals").add_subparsers(
        dest="principals", required=True
    )
    roles = [role.value for role in Role]
    create = principals.add_parser("create", help="create a principal and print its API key once")
    create.add_argument("--role", required=True, choices=roles)
    create.add_argument("--name", required=True)
    create.add_argument("--shop", action="append", help="a shop id (repeat for several)")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(func=cmd_create)

    listing = principals.add_parser("list", help="list principals, one a line")
    listing.add_argument("--role", type=Role, choices=list(Role))
    listing.add_argument("--shop", type=uuid.UUID, help="only those acting for this shop")
    listing.add_argument("--json", action="store_true", help="one JSON object a line")
    listing.set_defaults(func=cmd_list)

    disable = principals.add_parser("disable", help="disable a principal: its keys stop at once")
    disable.add_argument("id", type=uuid.UUID)
    disable.set_defaults(func=cmd_disable)

    rotate = principals.add_parser("rotate-key", help="issue a new key; earlier ones stop later")
    rotate.add_argument("id", type=uuid.UUID)
    rotate.add_argument(
        "--grace", default="PT24H", help="how long earlier keys keep working (PT0S: not at all)"
    )
    rotate.add_argument("--json", action="store_true", help="print one JSON object")
    rotate.set_defaults(func=cmd_rotate_key)

    link = principals.add_parser(
        "sign-in-link", help="print a one-time link into the web console (shopkeepers, auditors)"
    )
    link.add_argument("who", metavar="NAME", help="the principal's name, or its id")
    link.set_defaults(func=cmd_sign_in_link)
