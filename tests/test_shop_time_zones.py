"""A shop's time zone: set through the API or the portal, and followed by the portal's days
and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.factories import World, audit_log, sale
from tests.test_web_console import sign_in

SHANGHAI = "Asia/Shanghai"


def test_a_shop_keeps_a_time_zone_set_at_registration_or_later(world: World) -> None:
    made = world.admin.post("/v1/shops", {"name": "Corner", "time_zone": SHANGHAI})
    assert made.status_code == 201, made.text
    assert made.json()["time_zone"] == SHANGHAI
    shop = world.shop()
    assert shop.keeper.get(f"/v1/shops/{shop.id}").json()["time_zone"] is None

    changed = world.client.patch(
        f"/v1/shops/{shop.id}", json={"time_zone": "Asia/Singapore"}, headers=shop.keeper.headers
    )

    assert changed.status_code == 200, changed.text
    assert shop.keeper.get(f"/v1/shops/{shop.id}").json()["time_zone"] == "Asia/Singapore"
    written = [e for e in audit_log(world.principal("auditor")) if e["action"] == "shop.write"]
    assert [(e["shop_id"], e["details"]) for e in written] == [
        (shop.id, {"changed": ["time_zone"]})
    ]


def test_a_time_zone_must_be_an_iana_name(world: World) -> None:
    for bad in ("Mars/Olympus", "UTC+8", "", "asia/shanghai"):
        answer = world.admin.post("/v1/shops", {"name": "Corner", "time_zone": bad})
        assert answer.status_code == 422, bad
        assert answer.json()["fields"][0]["field"] == "body.time_zone"


def test_only_the_shops_keeper_or_an_admin_changes_it(world: World) -> None:
    shop, other = world.shop(), world.shop("别家小店")
    body = {"time_zone": SHANGHAI}
    for stranger in (other.keeper, shop.connector, world.consumer()):
        answer = world.client.patch(f"/v1/shops/{shop.id}", json=body, headers=stranger.headers)
        assert answer.status_code == 404
        assert stranger.get(f"/v1/shops/{shop.id}").status_code == 404
    by_admin = world.client.patch(f"/v1/shops/{shop.id}", json=body, headers=world.admin.headers)
    assert by_admin.status_code == 200
    assert shop.keeper.get(f"/v1/shops/{shop.id}").json()["time_zone"] == SHANGHAI


def _todays_figure(world: World, shop_id: str) -> str:
    page = world.client.get(f"/portal/shops/{shop_id}/", headers={"Accept-Language": "en"})
    assert page.status_code == 200, page.text
    start = page.text.index('data-figure="today">') + len('data-figure="today">')
    return page.text[start : page.text.index("<", start)]


def test_the_portals_today_begins_at_midnight_where_the_shop_is(world: World) -> None:
    now = datetime.now(UTC)
    utc_midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    local = now.astimezone(ZoneInfo(SHANGHAI))
    shanghai_midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    # A sale after one of the two midnights and before the other: today for one shop only.
    at = max(utc_midnight, shanghai_midnight) - timedelta(minutes=1)
    in_shanghai = at >= shanghai_midnight
    utc_shop, shanghai_shop = world.shop(), world.shop("上海小店")
    world.client.patch(
        f"/v1/shops/{shanghai_shop.id}",
        json={"time_zone": SHANGHAI},
        headers=shanghai_shop.keeper.headers,
    )
    for shop in (utc_shop, shanghai_shop):
        world.ingest(shop, "sales", [sale(1, at=at, quantity=2, unit_price_cents=450)])

    sign_in(world, utc_shop.keeper.id)
    utc_today = _todays_figure(world, utc_shop.id)
    sign_in(world, shanghai_shop.keeper.id)
    shanghai_today = _todays_figure(world, shanghai_shop.id)

    assert "9.00" in (shanghai_today if in_shanghai else utc_today)
    assert "0.00" in (utc_today if in_shanghai else shanghai_today)


def test_portal_times_are_the_shops_and_say_so_while_the_console_keeps_utc(
    world: World,
) -> None:
    shop = world.shop()
    consumer = world.consumer("Lucky Wholesale")
    world.ingest(shop, "sales", [sale(1)])
    world.grant(shop, consumer, "replenishment", ["sales"])
    consumer.get(f"/v1/shops/{shop.id}/sales", purpose="replenishment")
    signed_in = sign_in(world, shop.keeper.id)
    english = {"Accept-Language": "en", "X-CSRF-Token": signed_in.csrf}

    before = world.client.get(f"/portal/shops/{shop.id}/access-log", headers=english).text
    refused = world.client.post(
        f"/portal/shops/{shop.id}/time-zone", data={"time_zone": "Mars/Olympus"}, headers=english
    )
    saved = world.client.post(
        f"/portal/shops/{shop.id}/time-zone", data={"time_zone": SHANGHAI}, headers=english
    )
    after = world.client.get(f"/portal/shops/{shop.id}/access-log", headers=english).text
    chinese = world.client.get(
        f"/portal/shops/{shop.id}/consents", headers={"Accept-Language": "zh-CN"}
    ).text
    sign_in(world, world.principal("auditor").id)
    console = world.client.get(f"/console/shops/{shop.id}", headers={"Accept-Language": "en"})

    assert " UTC<" in before
    assert refused.status_code == 422
    assert "form.time_zone" in refused.text
    assert saved.status_code == 204
    assert "China (Shanghai) Time" in after
    assert " UTC<" not in after
    assert "中国（上海）时间" in chinese  # noqa: RUF001 (as Babel writes it)
    assert " UTC<" in console.text
    assert "Shanghai" not in console.text
