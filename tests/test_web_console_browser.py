"""The web console in a real browser, at a phone's width, in Chinese and in English."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route, expect

from audit import verification
from hub.runtime import Hub
from tests.browser import Watched, phone_page
from tests.factories import Actor, ShopSetup, World, count, rfc3339, sale
from tests.servers import Server, hub_server

#: Above the database: SQLite alone (tests/conftest.py).
pytestmark = pytest.mark.one_backend


#: What each language calls the things the tests look for.
WORDS = {
    "en": {
        "home": "My shop",
        "dead_link": "This link no longer works",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "stock counts": "stock counts",
        "reads a day": "Reads a day, at most",
        "approve_terms": "Approve these terms",
        "refuse": "Refuse",
        "no_requests": "No one is waiting for an answer.",
        "pause_all": "Pause all sharing",
        "resume_all": "Resume sharing",
        "revoke": "Revoke",
        "receipt": "Signed receipt",
        "who_read": "Who read my data",
        "outcome": "Outcome",
        "show": "Show",
        "read_one": "read 1 line of sales",
        "verified": "In the signed log",
        "my_data": "My data",
        "download": "Download my data",
        "type_name": "Type your shop's name",
        "erase": "Erase my shop for good",
        "erased": "Your shop's data is erased",
        "search_events": "Search events",
        "action": "Action",
        "search": "Search",
        "csv": "Download as CSV",
        "charts": "Access over time",
        "verify": "Verify the whole log",
        "time_zone": "Time zone",
        "save": "Save",
        "shanghai_days": "Days run from midnight, China (Shanghai) Time.",
        "verified_all": "entries verified",
    },
    "zh-Hans": {
        "home": "我的店铺",
        "dead_link": "此链接已失效",
        "sign_in": "登录",
        "sign_out": "退出登录",
        "stock counts": "库存盘点",
        "reads a day": "每天最多读取次数",
        "approve_terms": "同意这些条款",
        "refuse": "拒绝",
        "no_requests": "没有等待您答复的请求。",
        "pause_all": "暂停所有分享",
        "resume_all": "恢复分享",
        "revoke": "撤销",
        "receipt": "签名回执",
        "who_read": "谁读取了我的数据",
        "outcome": "结果",
        "show": "显示",
        "read_one": "读取了 1 条销售记录",
        "verified": "已记入签名日志",
        "my_data": "我的数据",
        "download": "下载我的数据",
        "type_name": "请输入您的店铺名称",
        "erase": "永久删除我的店铺",
        "erased": "您店铺的数据已删除",
        "search_events": "查询事件",
        "action": "操作",
        "search": "查询",
        "csv": "下载 CSV",
        "charts": "访问趋势",
        "verify": "核验整个日志",
        "time_zone": "时区",
        "save": "保存",
        "shanghai_days": "每天从午夜开始计算，按中国（上海）时间。",  # noqa: RUF001
        "verified_all": "已核验全部",
    },
}


@pytest.fixture(scope="module")
def server(hub: Hub) -> Iterator[Server]:
    # One server for the module: each test's world is fresh (its tables wiped, new ids),
    # and starting a hub process per test cost half of this module's minute.
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


def _ask(shop: ShopSetup, consumer: Actor, purpose: str, categories: list[str]) -> str:
    asked = consumer.post(
        f"/v1/shops/{shop.id}/consent-requests",
        {
            "purpose": purpose,
            "categories": categories,
            "expires_at": rfc3339(datetime.now(UTC) + timedelta(days=60)),
        },
    )
    assert asked.status_code == 201, asked.text
    request_id: str = asked.json()["id"]
    return request_id


def _reads(consumer: Actor, shop: ShopSetup, purpose: str, category: str = "sales") -> int:
    return consumer.get(f"/v1/shops/{shop.id}/{category}", purpose=purpose).status_code


def test_a_shopkeeper_answers_requests_and_stops_sharing_from_a_phone(
    world: World, phone: Watched
) -> None:
    shop = _shop_with_sales(world)
    grocer = world.consumer("Lucky Wholesale")
    lender = world.consumer("Xihu Micro-Credit")
    asked = _ask(shop, grocer, "replenishment", ["sales", "inventory"])
    _ask(shop, lender, "credit-assessment", ["sales", "payments"])
    words = WORDS[phone.language]
    page = phone.page

    page.goto(_link(world, shop.keeper.id))
    page.get_by_role("button", name=words["sign_in"]).click()
    page.goto(f"/portal/shops/{shop.id}/requests")
    grocers = page.locator(f'[data-request="{asked}"]')
    expect(grocers).to_contain_text("Lucky Wholesale")
    assert not phone.scrolls_sideways()

    # Approve the grocer's request narrowed: sales only, three reads a day.
    grocers.locator("summary").click()
    grocers.get_by_label(words["stock counts"]).uncheck()
    grocers.get_by_label(words["reads a day"]).fill("3")
    grocers.get_by_role("button", name=words["approve_terms"]).click()
    expect(grocers).to_have_count(0)
    # Refuse the lender's.
    page.get_by_role("button", name=words["refuse"]).click()
    expect(page.get_by_text(words["no_requests"])).to_be_visible()

    consents = grocer.get("/v1/consumers/me/consents").json()["consents"]
    (approved,) = [c for c in consents if c["status"] == "active"]
    assert approved["categories"] == ["sales"]
    assert approved["max_reads_per_day"] == 3
    assert _reads(grocer, shop, "replenishment") == 200
    assert _reads(grocer, shop, "replenishment", "inventory") == 404
    assert _reads(lender, shop, "credit-assessment") == 404

    # Pause all sharing: the grocer is refused at once; resume, then revoke.
    page.goto(f"/portal/shops/{shop.id}/consents")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=words["pause_all"]).click()
    expect(page.locator(".status-paused")).to_have_count(1)
    assert _reads(grocer, shop, "replenishment") == 404
    page.get_by_role("button", name=words["resume_all"]).click()
    expect(page.locator(".status-active")).to_have_count(1)
    assert _reads(grocer, shop, "replenishment") == 200
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=words["revoke"]).click()
    expect(page.locator(".past .status-revoked")).to_have_count(1)
    assert _reads(grocer, shop, "replenishment") == 404
    assert not phone.scrolls_sideways()

    with page.expect_download() as receipt:
        page.get_by_role("link", name=words["receipt"]).first.click()
    assert receipt.value.suggested_filename.startswith("receipt-")
    assert phone.unexpected_errors() == []
    assert phone.csp_violations() == []


def test_a_shopkeeper_finds_a_read_in_the_signed_log(world: World, phone: Watched) -> None:
    shop = _shop_with_sales(world)
    grocer = world.consumer("Lucky Wholesale")
    world.grant(shop, grocer, "replenishment", ["sales"])
    assert _reads(grocer, shop, "replenishment") == 200
    words = WORDS[phone.language]
    page = phone.page

    page.goto(_link(world, shop.keeper.id))
    page.get_by_role("button", name=words["sign_in"]).click()
    page.get_by_role("link", name=words["who_read"]).click()
    page.get_by_label(words["outcome"]).select_option("allow")
    page.get_by_role("button", name=words["show"]).click()
    read = page.locator(".entry.allow", has_text="Lucky Wholesale").first
    expect(read).to_contain_text(words["read_one"])
    mark = read.get_by_role("link", name=words["verified"])
    expect(mark).to_be_visible()
    assert not phone.scrolls_sideways()
    proof = page.request.get(mark.get_attribute("href") or "")
    assert proof.status == 200
    assert proof.json()["proof"] is not None
    assert phone.unexpected_errors() == []
    assert phone.csp_violations() == []


def test_a_shopkeeper_downloads_the_export_and_erases_behind_a_confirmation(
    world: World, phone: Watched, tmp_path: Path
) -> None:
    shop = _shop_with_sales(world)
    grocer = world.consumer("Lucky Wholesale")
    world.grant(shop, grocer, "replenishment", ["sales"])
    words = WORDS[phone.language]
    page = phone.page

    page.goto(_link(world, shop.keeper.id))
    page.get_by_role("button", name=words["sign_in"]).click()
    page.get_by_role("link", name=words["my_data"], exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(words["my_data"])
    assert not phone.scrolls_sideways()
    with page.expect_download() as download:
        page.get_by_role("link", name=words["download"]).click()
    saved = tmp_path / "export.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert "manifest.json" in archive.namelist()
        assert json.loads(archive.read("manifest.json"))

    # A wrong name erases nothing, and says why.
    page.get_by_label(words["type_name"]).fill("not my shop")
    page.get_by_role("button", name=words["erase"]).click()
    expect(page.locator("#flash")).to_be_visible()
    assert _reads(grocer, shop, "replenishment") == 200

    page.get_by_label(words["type_name"]).fill("王记便利店 Wang's Corner Store")
    page.get_by_role("button", name=words["erase"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(words["erased"])
    assert _reads(grocer, shop, "replenishment") == 404
    assert shop.keeper.get("/v1/principals/me").status_code == 401
    assert phone.unexpected_errors(422) == []
    assert phone.csp_violations() == []


def test_a_shopkeeper_sets_the_shops_time_zone(world: World, phone: Watched) -> None:
    shop = _shop_with_sales(world)
    words = WORDS[phone.language]
    page = phone.page

    page.goto(_link(world, shop.keeper.id))
    page.get_by_role("button", name=words["sign_in"]).click()
    page.get_by_role("link", name=words["my_data"], exact=True).click()
    page.get_by_label(words["time_zone"]).select_option("Asia/Shanghai")
    page.get_by_role("button", name=words["save"]).click()

    expect(page.get_by_text(words["shanghai_days"])).to_be_visible()
    assert shop.keeper.get(f"/v1/shops/{shop.id}").json()["time_zone"] == "Asia/Shanghai"
    assert not phone.scrolls_sideways()
    assert phone.unexpected_errors() == []
    assert phone.csp_violations() == []


def test_an_auditor_sees_the_logs_consistency_and_downloads_events(
    world: World, phone: Watched
) -> None:
    shop = _shop_with_sales(world)
    auditor = world.principal("auditor")
    words = WORDS[phone.language]
    page = phone.page

    page.goto(_link(world, auditor.id))
    page.get_by_role("button", name=words["sign_in"]).click()
    expect(page.locator("[data-consistency=first]")).to_be_visible()
    world.ingest(shop, "sales", [sale(9)])
    page.reload()
    expect(page.locator("[data-consistency=consistent]")).to_be_visible()
    assert not phone.scrolls_sideways()

    page.get_by_role("link", name=words["search_events"]).click()
    page.get_by_label(words["action"]).select_option("ingest")
    page.get_by_role("button", name=words["search"], exact=True).click()
    expect(page.locator(".entry")).to_have_count(2)
    with page.expect_download() as download:
        page.get_by_role("link", name=words["csv"]).click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("seq,")
    assert len(lines) == 1 + 2
    assert not phone.scrolls_sideways()
    assert phone.unexpected_errors() == []
    assert phone.csp_violations() == []


def test_an_auditor_follows_the_full_check_of_the_log(
    world: World, hub: Hub, phone: Watched
) -> None:
    _shop_with_sales(world)
    auditor = world.principal("auditor")
    words = WORDS[phone.language]
    page = phone.page
    # A check already working, as another auditor's might be: the page shows how far it
    # has got, and follows it to its end by itself.
    with hub.sessions() as session, session.begin():
        working, _ = verification.start(session, None)

    page.goto(_link(world, auditor.id))
    page.get_by_role("button", name=words["sign_in"]).click()
    expect(page.locator("#verification progress")).to_be_visible()
    expect(page.get_by_role("button", name=words["verify"])).to_have_count(0)
    verification.work(hub.sessions, working.id)  # what the run's thread does
    expect(page.locator("#verification[data-status=passed]")).to_contain_text(words["verified_all"])

    page.get_by_role("button", name=words["verify"]).click()
    again = page.locator(f"#verification[data-status=passed]:not([data-run='{working.id}'])")
    expect(again).to_be_visible()
    assert not phone.scrolls_sideways()
    assert phone.unexpected_errors() == []
    assert phone.csp_violations() == []


def test_an_auditors_charts_render_and_a_name_stays_text(world: World, phone: Watched) -> None:
    shop = _shop_with_sales(world)
    sly = world.consumer("</script><script>document.title='owned'</script>")
    world.grant(shop, sly, "analytics", ["sales"])
    assert _reads(sly, shop, "analytics") == 200
    assert _reads(sly, shop, "credit-assessment") == 404
    # The shop reading its own data is no consumer's access.
    assert shop.keeper.get(f"/v1/shops/{shop.id}/sales").status_code == 200
    auditor = world.principal("auditor")
    words = WORDS[phone.language]
    page = phone.page

    page.goto(_link(world, auditor.id))
    page.get_by_role("button", name=words["sign_in"]).click()
    page.get_by_role("link", name=words["charts"]).click()
    expect(page.locator("body")).to_have_attribute("data-charts-drawn", "true")
    for name in ("reads", "refusals", "consumers", "changes"):
        drawn = page.evaluate(
            f"Chart.getChart(document.getElementById('chart-{name}')).data.datasets.length"
        )
        assert drawn >= 1, name
    consumers = page.evaluate("Chart.getChart(document.getElementById('chart-consumers')).data")
    assert consumers["labels"] == ["</script><script>document.title='owned'</script>"]
    assert consumers["datasets"][0]["data"] == [1]
    assert page.title() != "owned"
    assert not phone.scrolls_sideways()
    assert phone.unexpected_errors() == []
    assert phone.csp_violations() == []


def test_no_page_scrolls_sideways_errs_or_breaks_the_policy(world: World, phone: Watched) -> None:
    """Every page of the portal and the console, on a phone, in this language."""
    shop = _shop_with_sales(world)
    # Counted within the home page's 30 days, whatever day the test runs.
    lately = rfc3339(datetime.now(UTC) - timedelta(hours=1))
    long_name = "SKU-长长的商品名称-" + "很长" * 20
    world.ingest(shop, "inventory", [count(1, sku=long_name, on_hand=1, counted_at=lately)])
    grocer = world.consumer("Lucky Wholesale 幸运批发 — a consumer with a very long name indeed")
    _ask(shop, grocer, "replenishment", ["sales", "inventory"])
    world.grant(shop, world.consumer(), "analytics", ["sales"])
    # An order with a long name and a credit line, on the offers page.
    supplier = world.consumer()
    world.grant(shop, supplier, "replenishment", ["sales"])
    line = {"sku": long_name, "name": long_name, "quantity": 24, "case_pack": 12}
    order = {"kind": "purchase-order", "warehouse": "幸运批发 Lucky Wholesale", "lines": [line]}
    assert supplier.post(f"/v1/shops/{shop.id}/proposals", order).status_code == 201
    page = phone.page
    words = WORDS[phone.language]

    page.goto(_link(world, shop.keeper.id))
    page.get_by_role("button", name=words["sign_in"]).click()
    expect(page.locator("#low-stock li")).to_have_count(1)
    for path in ("", "requests", "offers", "consents", "access-log", "my-data"):
        page.goto(f"/portal/shops/{shop.id}/{path}")
        expect(page.locator("html")).to_have_attribute("lang", phone.language)
        assert not phone.scrolls_sideways(), path
        assert phone.csp_violations() == [], path

    page.context.clear_cookies()
    page.goto(_link(world, world.principal("auditor").id))
    page.get_by_role("button", name=words["sign_in"]).click()
    for path in (
        "/console/",
        "/console/charts",
        "/console/events",
        "/console/privacy",
        f"/console/shops/{shop.id}",
    ):
        page.goto(path)
        assert not phone.scrolls_sideways(), path
        assert phone.csp_violations() == [], path
    page.goto(f"/portal/shops/{shop.id}/")  # not the auditor's: a friendly page, not JSON
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert not phone.scrolls_sideways()
    assert phone.unexpected_errors(404) == []
