"""The web console's way in and its rules, seen from the server: links, sessions, CSRF, pages.

What a person sees in a browser is tested in ``tests/test_web_console_browser.py``.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy import update

from cornerstore.models.audit import AuditEntry
from cornerstore.models.principals import WebSession
from cornerstore.websessions import COOKIE, CSRF_HEADER
from hub.runtime import Hub
from tests.cli import Cli
from tests.factories import Actor, World, count, rebuild_audit_tree, rfc3339, sale
from web_console.i18n import LOCALES_DIR

ROOT = LOCALES_DIR.parent.parent


def mint(world: World, by: Actor, principal_id: str) -> httpx.Response:
    return by.post(f"/v1/principals/{principal_id}/sign-in-link")


@dataclass(frozen=True)
class SignedIn:
    link: str
    csrf: str
    #: The page the sign-in landed on.
    home: str


def sign_in(world: World, principal_id: str) -> SignedIn:
    """Sign in as the principal through a fresh link, as a browser would."""
    minted = mint(world, world.admin, principal_id)
    assert minted.status_code == 201, minted.text
    link = urlsplit(minted.json()["url"])
    page = world.client.get(f"{link.path}?{link.query}")
    assert page.status_code == 200
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token is not None
    signed_in = world.client.post(
        "/sign-in", data={"token": token.group(1)}, follow_redirects=False
    )
    assert signed_in.status_code == 303, signed_in.text
    home = world.client.get(signed_in.headers["location"], follow_redirects=True)
    assert home.status_code == 200, home.text
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
    assert csrf is not None
    return SignedIn(f"{link.path}?{link.query}", csrf.group(1), home.text)


def test_a_link_signs_in_once_and_the_cookie_is_guarded(world: World) -> None:
    shop = world.shop()
    minted = mint(world, world.admin, shop.keeper.id)
    assert minted.status_code == 201
    url = urlsplit(minted.json()["url"])
    assert url.path == "/sign-in"
    assert url.query.startswith("token=")
    token = url.query.removeprefix("token=")

    # Opening the link spends nothing: a link previewer cannot use it up.
    assert world.client.get(f"/sign-in?token={token}").status_code == 200
    first = world.client.post("/sign-in", data={"token": token}, follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/portal/"
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie

    world.client.cookies.clear()
    again = world.client.post("/sign-in", data={"token": token}, follow_redirects=False)
    assert again.status_code == 401
    assert again.headers["content-type"].startswith("text/html")
    assert "no longer works" in again.text
    assert COOKIE not in again.headers.get("set-cookie", "")


def test_who_may_mint_a_link(world: World) -> None:
    shop = world.shop()
    consumer = world.consumer()
    assert mint(world, shop.keeper, shop.keeper.id).status_code == 201
    # A connector never can, not even for itself: a stolen POS key takes over nothing.
    assert mint(world, shop.connector, shop.connector.id).status_code == 404
    assert mint(world, shop.connector, shop.keeper.id).status_code == 404
    # The console is for people who decide or review, not for machines.
    assert mint(world, world.admin, consumer.id).status_code == 409
    assert mint(world, shop.keeper, shop.connector.id).status_code == 409
    assert mint(world, world.admin, world.principal("auditor").id).status_code == 201


def test_a_session_changes_nothing_without_its_csrf_token(world: World) -> None:
    shop = world.shop()
    csrf = sign_in(world, shop.keeper.id).csrf
    path = f"/v1/shops/{shop.id}/pause-sharing"
    refused = world.client.post(path)
    assert refused.status_code == 403
    assert world.client.post(path, headers={CSRF_HEADER: "forged"}).status_code == 403
    assert world.client.post(path, headers={CSRF_HEADER: csrf}).status_code == 200


def test_disabling_a_principal_ends_its_sessions(world: World) -> None:
    shop = world.shop()
    sign_in(world, shop.keeper.id)
    assert world.client.get(f"/portal/shops/{shop.id}/").status_code == 200
    disabled = world.client.post(
        f"/v1/principals/{shop.keeper.id}/disable", headers=world.admin.headers
    )
    assert disabled.status_code == 200
    page = world.client.get(f"/portal/shops/{shop.id}/")
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")


def test_a_shopkeeper_never_sees_another_shops_page(world: World) -> None:
    mine, theirs = world.shop(), world.shop("别家小店")
    sign_in(world, mine.keeper.id)
    for path in (f"/portal/shops/{theirs.id}/", "/portal/shops/not-a-shop/"):
        page = world.client.get(path)
        assert page.status_code in (404, 422), path
        assert page.headers["content-type"].startswith("text/html"), path
    assert world.client.get(f"/portal/shops/{theirs.id}/").status_code == 404


def test_the_home_page_adds_up_the_shops_own_sales(world: World) -> None:
    shop = world.shop()
    now = datetime.now(UTC)
    world.ingest(shop, "sales", [sale(1, at=now, quantity=2, unit_price_cents=450)])
    sign_in(world, shop.keeper.id)
    page = world.client.get(f"/portal/shops/{shop.id}/", headers={"Accept-Language": "en"})
    assert 'data-figure="today">CN¥9.00<' in page.text or 'data-figure="today">¥9.00<' in page.text


def test_pages_carry_a_strict_policy_and_docs_work_offline(world: World) -> None:
    for path in ("/", "/sign-in?token=x", "/docs", "/redoc"):
        page = world.client.get(path)
        assert page.status_code == 200, path
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy
        assert "unsafe-inline' ;" not in policy
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "http://" not in page.text, path
        assert "https://" not in page.text, path
    assert "'unsafe-inline'" not in world.client.get("/").headers["content-security-policy"]
    for asset in (
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/redoc/redoc.standalone.js",
        "/static/vendor/htmx/htmx.min.js",
    ):
        assert world.client.get(asset).status_code == 200, asset


def test_the_front_door_answers_in_the_visitors_language(world: World) -> None:
    chinese = world.client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-Hans">' in chinese.text
    assert "只按您的意愿分享" in chinese.text
    english = world.client.get("/", headers={"Accept-Language": "en-GB"})
    assert '<html lang="en">' in english.text
    chosen = world.client.get("/language/zh-Hans?back=/", follow_redirects=False)
    assert chosen.status_code == 303
    assert '<html lang="zh-Hans">' in world.client.get("/", headers={"Accept-Language": "en"}).text


def test_every_string_of_the_pages_is_in_the_chinese_catalogue() -> None:
    with (LOCALES_DIR / "zh_Hans" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalogue = read_po(handle, locale="zh_Hans")
    method_map = [("web_console/**.py", "python"), ("web_console/templates/**.html", "jinja2")]
    options = {"web_console/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    missing = []
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map=options
    ):
        key = message[0] if isinstance(message, tuple) else message
        found = catalogue.get(key)
        if found is None or not found.string or found.string in ("", ("",)):
            missing.append(key)
    assert missing == []


def test_the_operator_mints_a_link_by_name(
    world: World, hub: Hub, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.principal("auditor", name="Regulator Li")
    monkeypatch.setenv("CORNERSTORE_DATABASE_URL", hub.settings.sqlalchemy_url)
    monkeypatch.setenv("CORNERSTORE_DATA_DIR", str(hub.settings.data_dir))
    result = cli("principals", "sign-in-link", "Regulator Li")
    assert result.code == 0, result.err
    link = urlsplit(result.out.splitlines()[0])
    assert link.path == "/sign-in"
    page = world.client.post("/sign-in", data={"token": link.query.removeprefix("token=")})
    assert page.status_code == 200
    assert "/console/" in str(page.url)
    assert cli("principals", "sign-in-link", "nobody").code == 2


@pytest.mark.parametrize("path", ["/portal/", f"/portal/shops/{uuid.UUID(int=1)}/"])
def test_a_page_without_a_session_asks_to_sign_in(world: World, path: str) -> None:
    page = world.client.get(path)
    assert page.status_code == 401
    assert "sign-in link" in page.text


def test_only_the_shops_own_keeper_acts_from_its_pages(world: World) -> None:
    mine, theirs = world.shop(), world.shop("别家小店")
    consumer = world.consumer()
    consent = world.grant(theirs, consumer, "replenishment", ["sales"])
    csrf = sign_in(world, mine.keeper.id).csrf
    headers = {CSRF_HEADER: csrf}
    for path in (
        f"/portal/shops/{theirs.id}/consents",
        f"/portal/shops/{theirs.id}/requests",
    ):
        assert world.client.get(path).status_code == 404, path
    revoke = f"/portal/shops/{theirs.id}/consents/{consent['id']}/revoke"
    assert world.client.post(revoke, headers=headers).status_code == 404
    assert (
        world.client.post(f"/portal/shops/{theirs.id}/sharing/pause", headers=headers).status_code
        == 404
    )
    # Nothing changed: the consumer still reads the other shop.
    assert consumer.get(f"/v1/shops/{theirs.id}/sales", purpose="replenishment").status_code == 200
    # And a keeper's own action without the token is refused.
    assert world.client.post(f"/portal/shops/{mine.id}/sharing/pause").status_code == 403


def test_who_read_my_data_marks_only_entries_the_signed_log_holds(world: World) -> None:
    shop = world.shop()
    consumer = world.consumer("Lucky Wholesale")
    world.ingest(shop, "sales", [sale(n) for n in range(3)])
    world.grant(shop, consumer, "replenishment", ["sales"])
    assert consumer.get(f"/v1/shops/{shop.id}/sales", purpose="replenishment").status_code == 200
    assert consumer.get(f"/v1/shops/{shop.id}/payments", purpose="replenishment").status_code == 404
    sign_in(world, shop.keeper.id)
    page_path = f"/portal/shops/{shop.id}/access-log"

    page = world.client.get(page_path, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "Lucky Wholesale" in page.text
    assert "read 3 lines of sales" in page.text
    assert "was refused:" in page.text
    assert "Not yet checked" not in page.text
    proof = re.search(
        r'href="(/v1/audit/proofs/inclusion\?index=\d+&amp;tree_size=\d+)"', page.text
    )
    assert proof is not None
    assert world.client.get(proof.group(1).replace("&amp;", "&")).status_code == 200

    refused = world.client.get(page_path, params={"outcome": "deny"})
    assert "was refused:" in refused.text
    assert "read 3 lines" not in refused.text

    # An entry changed behind the log's back loses its mark.
    with world.hub.engine.begin() as connection:
        connection.execute(
            update(AuditEntry)
            .where(AuditEntry.decision == "deny", AuditEntry.shop_id == uuid.UUID(shop.id))
            .values(reason="edited")
        )
    tampered = world.client.get(
        page_path, params={"outcome": "deny"}, headers={"Accept-Language": "en"}
    )
    assert "Not yet checked against the signed log" in tampered.text


def test_the_console_proves_each_checkpoint_extends_the_one_the_auditor_saw(world: World) -> None:
    shop = world.shop()
    auditor = world.principal("auditor")
    world.ingest(shop, "sales", [sale(1)])
    landing = sign_in(world, auditor.id).home
    english = {"Accept-Language": "en"}

    assert 'data-consistency="first"' in landing
    world.ingest(shop, "sales", [sale(2)])
    second = world.client.get("/console/", headers=english)
    assert 'data-consistency="consistent"' in second.text
    proof = re.search(r'href="(/v1/audit/proofs/consistency\?[^"]+)"', second.text)
    assert proof is not None
    assert world.client.get(proof.group(1).replace("&amp;", "&")).status_code == 200

    # A log rewritten behind the auditor's back no longer extends what it saw.
    world.ingest(shop, "sales", [sale(3)])
    with world.hub.sessions() as session:
        rebuild_audit_tree(session)  # what an operator with database access could do
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(reason="edited"))
        rebuild_audit_tree(session)
        session.commit()
    third = world.client.get("/console/", headers=english)
    assert 'data-consistency="inconsistent"' in third.text


def test_the_console_searches_with_every_filter_and_its_csv_is_safe(world: World) -> None:
    shop = world.shop()
    consumer = world.consumer()
    secret_sku = "SKU-SECRET-7F3A"
    world.ingest(shop, "sales", [sale(1, sku=secret_sku)])
    assert consumer.get(f"/v1/shops/{shop.id}/sales", purpose="analytics").status_code == 404
    auditor = world.principal("auditor", name="=cmd|' /C calc'!A0")
    sign_in(world, auditor.id)

    refused = world.client.get("/console/events", params={"decision": "deny", "shop_id": shop.id})
    assert refused.status_code == 200
    assert 'class="entry deny"' in refused.text
    assert 'class="entry allow"' not in refused.text
    bad = world.client.get("/console/events", params={"since": "yesterday"})
    assert bad.status_code == 422

    every = world.client.get("/console/events.csv")
    assert every.status_code == 200
    assert every.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(every.text)))
    assert rows[0][0] == "seq"
    assert len(rows) > 3
    # The auditor reviews access, never the shop's data values.
    assert secret_sku not in every.text
    for page in ("/console/", "/console/events"):
        assert secret_sku not in world.client.get(page).text
    # A principal named like a formula is written as text, not as a formula.
    named = [row for row in rows if "calc" in ",".join(row)]
    assert named
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in named for cell in row)


def test_the_home_page_lists_what_runs_low_at_its_latest_count(world: World) -> None:
    shop = world.shop()
    now = datetime.now(UTC)
    world.ingest(
        shop,
        "inventory",
        [
            count(1, sku="SKU-TEA", on_hand=2, counted_at=rfc3339(now - timedelta(days=2))),
            count(2, sku="SKU-TEA", on_hand=40, counted_at=rfc3339(now - timedelta(days=1))),
            count(3, sku="SKU-RICE", on_hand=3, counted_at=rfc3339(now - timedelta(hours=1))),
        ],
    )
    rice = {"sku": "SKU-RICE", "name_zh": "东北大米 5kg", "name_en": "Northeast rice 5 kg"}
    catalogue = shop.connector.client.put(
        f"/v1/shops/{shop.id}/catalogue", json={"items": [rice]}, headers=shop.connector.headers
    )
    assert catalogue.status_code == 200, catalogue.text
    sign_in(world, shop.keeper.id)
    home = world.client.get(f"/portal/shops/{shop.id}/")
    assert f'hx-get="/portal/shops/{shop.id}/low-stock"' in home.text
    low = world.client.get(f"/portal/shops/{shop.id}/low-stock", headers={"Accept-Language": "en"})
    assert low.status_code == 200
    # By the shop's own name for it, its code small beneath.
    assert (
        '<span class="product">Northeast rice 5 kg <small class="sku">SKU-RICE</small>' in low.text
    )
    assert 'data-on-hand="3"' in low.text
    assert "SKU-TEA" not in low.text  # restocked since its low count
    in_chinese = world.client.get(
        f"/portal/shops/{shop.id}/low-stock", headers={"Accept-Language": "zh-CN"}
    )
    assert "东北大米 5kg" in in_chinese.text


@pytest.mark.parametrize("over", ["idle", "absolute"])
def test_a_session_ends_when_unused_too_long_or_too_old(world: World, over: str) -> None:
    shop = world.shop()
    sign_in(world, shop.keeper.id)
    assert world.client.get(f"/portal/shops/{shop.id}/").status_code == 200
    settings = world.hub.settings
    now = datetime.now(UTC)
    values = (
        {"last_seen_at": now - settings.session_idle_timeout - timedelta(seconds=1)}
        if over == "idle"
        else {"expires_at": now - timedelta(seconds=1)}
    )
    with world.hub.engine.begin() as connection:
        connection.execute(update(WebSession).values(**values))
    page = world.client.get(f"/portal/shops/{shop.id}/")
    assert page.status_code == 401
    assert "sign-in link" in page.text


def test_an_auditor_reviews_one_shops_consents_and_their_history(world: World) -> None:
    shop = world.shop()
    consumer = world.consumer("Lucky Wholesale")
    consent = world.grant(shop, consumer, "replenishment", ["sales"])
    assert (
        shop.keeper.post(f"/v1/shops/{shop.id}/consents/{consent['id']}/revoke").status_code == 200
    )
    world.ingest(shop, "sales", [sale(1, sku="SKU-SECRET-9C2B")])
    sign_in(world, world.principal("auditor").id)

    page = world.client.get(f"/console/shops/{shop.id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "Lucky Wholesale" in page.text
    assert page.text.count(f'data-consent="{consent["id"]}"') == 3  # the consent, granted, revoked
    assert page.text.index("revoke") < page.text.index("grant")  # newest first
    assert f'href="/console/events?shop_id={shop.id}"' in page.text
    assert "SKU-SECRET-9C2B" not in page.text
    # The page holds what the shop's consent history holds: another shop's keeper is refused.
    sign_in(world, world.shop("别家小店").keeper.id)
    assert world.client.get(f"/console/shops/{shop.id}").status_code == 404


def test_the_front_door_sends_a_signed_in_auditor_to_the_console(world: World) -> None:
    sign_in(world, world.principal("auditor").id)
    landed = world.client.get("/", headers={"Accept-Language": "en"})
    assert landed.status_code == 200
    assert str(landed.url).endswith("/console/")
    assert "Audit console" in landed.text
