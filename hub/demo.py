"""``cornerstore demo``: a hub on SQLite with demo shops, consumers, consents and keys.

It goes through the same services the API uses (shops get keys, records are
validated, sealed and audited), so the demo shows the real thing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import make_url, select

from connectors import service as ingestion
from consent import service as consents
from consent.schemas import ConsentIn
from cornerstore.authz import PurposeName
from cornerstore.categories import Category
from cornerstore.db import make_engine, session_scope, utcnow
from cornerstore.identity import Caller
from cornerstore.migrations import upgrade
from cornerstore.models.principals import Principal, Role
from cornerstore.settings import Environment, Settings
from hub import demo_data
from hub.principals import service as principals
from hub.principals.schemas import PrincipalCreated, PrincipalIn
from hub.runtime import Hub
from hub.shops import service as shops
from hub.shops.schemas import ShopIn

#: (consumer name, purpose, categories, share of shops that consent)
#: The demo's shops are in Hangzhou: their days begin at midnight there.
DEMO_TIME_ZONE = "Asia/Shanghai"

CONSUMERS = (
    (
        "Fresh Route Replenishment 鲜达补货",
        PurposeName.replenishment,
        [Category.sales, Category.inventory, Category.catalogue],
        0.8,
    ),
    (
        "Market Insight Analytics 市场洞察",
        PurposeName.analytics,
        [Category.sales, Category.payments],
        0.6,
    ),
    (
        "Neighbourhood Credit 邻里信贷",
        PurposeName.credit_assessment,
        [Category.sales, Category.payments],
        0.2,
    ),
)


#: What each demo consumer does, as the shopkeepers it asks read it.
DESCRIPTIONS = {
    "Fresh Route Replenishment 鲜达补货": "Restocks your shelves from nearby warehouses. "
    "为您从附近仓库补货。",
    "Market Insight Analytics 市场洞察": "Studies what sells in the district, never who buys. "
    "分析本区畅销商品，不涉及顾客身份。",  # noqa: RUF001 (a Chinese comma)
    "Neighbourhood Credit 邻里信贷": "Offers small credit lines priced on your takings. "
    "根据您的流水提供小额授信。",
}


#: The shelf each kind of product sits on, by the word after "SKU-" in its code.
_GROUPS = {
    "饮料 drinks": ("WATER", "TEA", "COLA", "SODA", "ENERGY"),
    "乳品 dairy": ("MILK", "YOGURT"),
    "酒 alcohol": ("BEER", "BAIJIU"),
    "粮油调味 pantry": ("NOODLE", "RICE", "OIL", "SOY", "VINEGAR", "CHILI", "PICKLE"),
    "零食 snacks": ("SNACK", "BISCUIT", "NUTS", "SAUSAGE", "CHOC", "GUM"),
    "冷冻 frozen": ("ICECREAM", "DUMPLING"),
    "鲜食 fresh": ("BREAD", "EGG"),
}


def catalogue_items() -> list[dict[str, object]]:
    """The demo's products as a shop's catalogue: its names, and the shelf each sits on."""
    items: list[dict[str, object]] = []
    for product in demo_data.CATALOGUE:
        kind = product.sku.split("-")[1]
        group = next((g for g, kinds in _GROUPS.items() if kind in kinds), "日用 household")
        items.append(
            {
                "sku": product.sku,
                "name_zh": product.name_zh,
                "name_en": product.name_en,
                "category": group,
            }
        )
    return items


@dataclass
class DemoKeys:
    admin: PrincipalCreated | None = None
    auditor: PrincipalCreated | None = None
    consumers: list[tuple[PrincipalCreated, PurposeName]] = field(default_factory=list)
    shopkeeper: PrincipalCreated | None = None
    connector: PrincipalCreated | None = None
    first_shop: uuid.UUID | None = None


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def seed(hub: Hub, *, shops_count: int, days: int) -> DemoKeys:
    keys = DemoKeys()
    # Up to now, so that the portal's "today" and "last 7 days" show the demo's sales.
    generated = demo_data.generate(shops=shops_count, days=days, end=utcnow())
    with session_scope(hub.sessions) as session:
        keys.admin = principals.create(session, PrincipalIn(name="Demo admin", role=Role.admin))
        keys.auditor = principals.create(
            session, PrincipalIn(name="City market regulator", role=Role.auditor)
        )
        for name, purpose, _categories, _share in CONSUMERS:
            body = PrincipalIn(name=name, role=Role.consumer, description=DESCRIPTIONS[name])
            keys.consumers.append((principals.create(session, body), purpose))
    total = demo_data.total_records(generated)
    _out(
        f"loading {len(generated)} shops: {total['sales']} sales lines, "
        f"{total['inventory']} inventory counts, {total['payments']} payments"
    )
    expires = utcnow() + timedelta(days=90)
    for number, shop in enumerate(generated):
        with session_scope(hub.sessions) as session:
            created = shops.create(
                session,
                hub.keyring,
                ShopIn(name=shop.name, district=shop.district, time_zone=DEMO_TIME_ZONE),
            )
            keeper = principals.create(
                session,
                PrincipalIn(
                    name=f"Keeper of {shop.name}", role=Role.shopkeeper, shop_ids=[created.id]
                ),
            )
            connector = principals.create(
                session,
                PrincipalIn(name=f"POS of {shop.name}", role=Role.connector, shop_ids=[created.id]),
            )
            if number == 0:
                keys.first_shop, keys.shopkeeper, keys.connector = created.id, keeper, connector
            cipher = hub.keyring.cipher(session, created.id)
            as_connector = Caller(
                connector.id, connector.name, Role.connector, frozenset([created.id])
            )
            for category, records in (
                (Category.sales, shop.sales),
                (Category.inventory, shop.inventory),
                (Category.payments, shop.payments),
            ):
                for start in range(0, len(records), 5000):
                    ingestion.ingest(
                        session,
                        cipher,
                        as_connector,
                        category,
                        list(records[start : start + 5000]),
                        policy_version=hub.authorizer.policy_version,
                    )
            ingestion.replace(
                session,
                cipher,
                as_connector,
                Category.catalogue,
                catalogue_items(),
                policy_version=hub.authorizer.policy_version,
            )
            as_keeper = Caller(keeper.id, keeper.name, Role.shopkeeper, frozenset([created.id]))
            for (consumer, purpose), (_n, _p, categories, share) in zip(
                keys.consumers, CONSUMERS, strict=True
            ):
                # Spread consents deterministically: the first shops consent to everyone.
                if number < max(1, round(share * len(generated))):
                    consents.grant(
                        session,
                        consents.context(hub, as_keeper, hub.authorizer.policy_version, utcnow()),
                        created.id,
                        ConsentIn(
                            consumer_id=consumer.id,
                            purpose=purpose,
                            categories=categories,
                            expires_at=expires,
                        ),
                    )
        if (number + 1) % 10 == 0 or number + 1 == len(generated):
            _out(f"  {number + 1}/{len(generated)} shops loaded")
    return keys


def print_keys(keys: DemoKeys, base: str) -> None:
    assert keys.admin
    assert keys.auditor
    assert keys.shopkeeper
    assert keys.connector
    _out()
    _out("API keys (shown this once; only their hashes are stored):")
    _out(f"  admin        {keys.admin.api_key}")
    _out(f"  auditor      {keys.auditor.api_key}")
    for consumer, purpose in keys.consumers:
        _out(f"  consumer     {consumer.api_key}   {consumer.name} ({purpose.value})")
    _out(f"  shopkeeper   {keys.shopkeeper.api_key}   keeps shop {keys.first_shop}")
    _out(f"  connector    {keys.connector.api_key}   writes for shop {keys.first_shop}")
    replenisher, lender = keys.consumers[0][0].api_key, keys.consumers[2][0].api_key
    examples = (
        (
            "the replenishment service reads sales it has consent for, minimised to its purpose",
            replenisher,
            "/v1/shops/$SHOP/sales?purpose=replenishment&limit=3",
        ),
        (
            "the same service asking for payments is refused with 404, and the refusal is audited",
            replenisher,
            "/v1/shops/$SHOP/payments?purpose=replenishment",
        ),
        (
            "the lender sees payments with pseudonymous payers",
            lender,
            "/v1/shops/$SHOP/payments?purpose=credit-assessment&limit=3",
        ),
        (
            "the shopkeeper sees who read the shop's data, and what was refused",
            keys.shopkeeper.api_key,
            "/v1/shops/$SHOP/access-log",
        ),
        (
            "the shopkeeper lists consents (POST .../consents/ID/revoke ends one at once)",
            keys.shopkeeper.api_key,
            "/v1/shops/$SHOP/consents",
        ),
        (
            "the auditor queries every refused access",
            keys.auditor.api_key,
            "/v1/audit/events?decision=deny",
        ),
    )
    _out()
    _out("Try:")
    _out(f"  export SHOP={keys.first_shop}")
    for comment, api_key, path in examples:
        _out(f"  # {comment}")
        _out(f"  curl -s -H 'Authorization: Bearer {api_key}' \"{base}{path}\"")
    _out(f"  # API docs: {base}/docs")
    _out()


def write_keys(keys: DemoKeys, path: Path) -> None:
    """The keys as JSON for a script (``make consumers``): readable by this user alone."""
    assert keys.admin
    assert keys.auditor
    assert keys.shopkeeper
    assert keys.connector
    body = {
        "admin": keys.admin.api_key,
        "auditor": keys.auditor.api_key,
        "consumers": {purpose.value: created.api_key for created, purpose in keys.consumers},
        "shopkeeper": keys.shopkeeper.api_key,
        "connector": keys.connector.api_key,
        "first_shop": str(keys.first_shop),
    }
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "w") as out:
        json.dump(body, out, indent=2)


def _refusal(settings: Settings) -> str | None:
    """Why the demo must not run here, or None: it seeds demo data and prints its keys."""
    backend = make_url(settings.sqlalchemy_url).get_backend_name()
    if settings.environment is Environment.development and backend == "sqlite":
        return None
    # The backend's name only: the URL can hold a password.
    return (
        "the demo runs only in development on SQLite, not in "
        f"{settings.environment.value} on {backend}; it would load demo data into a real hub"
    )


def _demo_files(settings: Settings) -> list[Path]:
    """What ``--reset`` deletes: the SQLite database with its companions, and the key files."""
    files = [settings.master_key_path, settings.key_store_path]
    database = make_url(settings.sqlalchemy_url).database
    if database and database != ":memory:":
        files += [Path(database + suffix) for suffix in ("", "-wal", "-shm")]
    return files


def print_sign_in_links(hub: Hub, base: str) -> None:
    """Fresh one-time links into the web console: the auditor's, then each shopkeeper's."""
    _out()
    _out(f"Sign-in links for the web console (each works once, within {_minutes(hub)} minutes):")
    with session_scope(hub.sessions) as session:
        for role in (Role.auditor, Role.shopkeeper):
            after: uuid.UUID | None = None
            while True:
                page = principals.list_page(
                    session, role=role, shop_id=None, after=after, limit=500
                )
                for person in page.principals:
                    if person.disabled_at is None:
                        link = principals.sign_in_link(
                            session,
                            person.id,
                            public_url=base,
                            valid_for=hub.settings.sign_in_link_valid_for,
                            by=None,
                            policy_version=None,
                            now=utcnow(),
                        )
                        _out(f"  {person.name}: {link.url}")
                if page.next is None:
                    break
                after = uuid.UUID(page.next)
    _out("More later: .venv/bin/cornerstore principals sign-in-link NAME")


def _minutes(hub: Hub) -> int:
    return int(hub.settings.sign_in_link_valid_for.total_seconds() // 60)


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    refusal = _refusal(settings)
    if refusal is not None:
        sys.stderr.write(f"cornerstore: {refusal}\n")
        return 2  # the CLI's exit code for a refusal
    if args.reset:
        for path in _demo_files(settings):
            path.unlink(missing_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    upgrade(engine)
    hub = Hub.open(settings, engine=engine)
    try:
        with hub.sessions() as session:
            seeded = session.scalar(select(Principal.id).limit(1)) is not None
        if seeded:
            _out(
                f"demo data already in {settings.data_dir}; its keys were printed when it was made."
            )
            _out("Run with --reset to start afresh.")
        else:
            keys = seed(hub, shops_count=args.shops, days=args.days)
            print_keys(keys, f"http://{args.host}:{args.port}")
            if args.keys_file is not None:
                write_keys(keys, args.keys_file)
        # Links expire within minutes: every start of the demo prints fresh ones.
        print_sign_in_links(hub, f"http://{args.host}:{args.port}")
    finally:
        hub.close()
    if args.no_serve:
        return 0
    import uvicorn

    from hub.app import serve_app

    uvicorn.run(serve_app(), host=args.host, port=args.port, log_level="info")
    return 0
