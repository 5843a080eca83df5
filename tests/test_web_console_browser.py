"""The web console in a real browser, at a phone's width, in Chinese and in English."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route, expect

from hub.runtime import Hub
from tests.browser import Watched, phone_page
from tests.factories import ShopSetup, World, sale
from tests.servers import Server, hub_server

#: What each language calls the things the tests look for.
WORDS = {
    "en": {
        "home": "My shop",
        "dead_link": "This link no longer works",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
    },
    "zh-Hans": {
        "home": "我的店铺",
        "dead_link": "此链接已失效",
        "sign_in": "登录",
        "sign_out": "退出登录",
    },
}


@pytest.fixture
def server(hub: Hub) -> Iterator[Server]:
    with hub_server(hub) as running:
        yield running


@pytest.fixture(params=["zh-Hans", "en"])
def phone(request: pytest.FixtureRequest, browser: Browser, server: Server) -> Iterator[Watched]:
    yield from phone_page(browser, server.base_url, request.param)


def _link(world: World, principal_id: str) -> str:
    minted = world.admin.post(f"/v1/principals/{principal_id}/sign-in-link")
    assert minted.status_code == 201, minted.text
    url = urlsplit(minted.json()["url"])
    return f"{url.path}?{url.query}"


def _shop_with_sales(world: World) -> ShopSetup:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1, at=datetime.now(UTC), quantity=2, unit_price_cents=450)])
    return shop


def test_a_shopkeeper_signs_in_on_a_phone_once_per_link(world: World, phone: Watched) -> None:
    shop = _shop_with_sales(world)
    link = _link(world, shop.keeper.id)
    words = WORDS[phone.language]

    phone.page.goto(link)
    phone.page.get_by_role("button", name=words["sign_in"]).click()
    expect(phone.page.get_by_role("heading", level=1)).to_have_text(words["home"])
    expect(phone.page.locator("html")).to_have_attribute("lang", phone.language)
    assert phone.page.url.endswith(f"/portal/shops/{shop.id}/")
    expect(phone.page.locator('[data-figure="today"]')).to_contain_text("9.00")
    assert not phone.scrolls_sideways()

    # Signed out, the same link is refused: it worked once.
    phone.page.get_by_role("button", name=words["sign_out"]).click()
    expect(phone.page.get_by_role("button", name=words["sign_out"])).to_have_count(0)
    phone.page.goto(link)
    phone.page.get_by_role("button", name=words["sign_in"]).click()
    expect(phone.page.get_by_role("heading", level=1)).to_have_text(words["dead_link"])
    assert not phone.scrolls_sideways()

    assert phone.unexpected_errors(401) == []
    assert phone.csp_violations() == []


def test_the_language_switch_is_remembered(phone: Watched) -> None:
    phone.page.goto("/")
    phone.page.get_by_role("link", name="English").click()
    expect(phone.page.locator("html")).to_have_attribute("lang", "en")
    phone.page.get_by_role("link", name="中文").click()
    expect(phone.page.locator("html")).to_have_attribute("lang", "zh-Hans")
    phone.page.goto("/sign-in?token=x")
    expect(phone.page.locator("html")).to_have_attribute("lang", "zh-Hans")
    assert not phone.scrolls_sideways()
    assert phone.unexpected_errors() == []
    assert phone.csp_violations() == []


def test_the_api_reference_renders_with_no_internet(phone: Watched, server: Server) -> None:
    left: list[str] = []

    def only_the_hub(route: Route) -> None:
        if route.request.url.startswith(server.base_url):
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    # Redoc's bundle always asks a CDN for its own logo; the page's policy stops it
    # before it leaves the browser, so nothing reached the network either.
    blocked_logo = "img-src https://cdn.redoc.ly/redoc/logo-mini.svg"
    phone.page.route("**/*", only_the_hub)
    for path in ("/docs", "/redoc"):
        phone.page.goto(path)
        expect(phone.page.get_by_role("heading", level=1).first).to_contain_text("Cornerstore")
        assert [v for v in phone.csp_violations() if v != blocked_logo] == [], path
    assert [e for e in phone.unexpected_errors() if "cdn.redoc.ly" not in e] == []
    assert left == []
