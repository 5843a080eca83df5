"""Analytics across shops: the threshold counts shops, the budget runs out exactly, revoked and
erased shops drop out, every query is audited, and the noise is what was calibrated."""

from __future__ import annotations

import dataclasses
import math
import shutil
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from analytics import catalogue as analytics_catalogue
from analytics import privacy, rollups
from analytics.cells import Cells
from hub.app import create_app
from hub.runtime import Hub
from tests.conftest import wipe
from tests.factories import Actor, ShopSetup, World, audit_log, sale
from tests.servers import hub_server
from tests.test_web_console import sign_in

POLICIES = Path(__file__).resolve().parent.parent / "policies"

#: A catalogue whose noise is small enough for a test to see the threshold at work:
#: one cell per shop, and a budget large enough to spend in big steps.
TEST_CATALOGUE = """
[analytics]
min_shops = 10
epsilon_per_period = 1000.0
period = "P30D"
max_epsilon = 100.0
delta = 1e-7
max_cells_per_shop = 1

[analytics.categories.sales]
dimensions = ["sku", "district", "week", "day"]
measures.count = { clamp = [0, 50] }
measures.sum_quantity = { clamp = [-100, 200] }
measures.sum_revenue_cents = { clamp = [-50000, 200000] }
"""

WEEK = datetime(2026, 11, 16, 9, tzinfo=UTC)  # a Monday

#: How rarely a test may fail by chance alone: never in the life of the project.
ONE_IN_A_BILLION = 1e-9


def _noise_bound(scale: float, draws: int = 1) -> float:
    """The most ``draws`` Laplace draws of this scale add up to, but one time in a billion.

    P(|X| > b·t) = e^-t for one draw; a union bound over the draws splits the
    chance between them, so a sum of draws stays within the sum of the bounds.
    """
    return draws * scale * math.log(draws / ONE_IN_A_BILLION)


@pytest.fixture
def world(hub: Hub, tmp_path: Path) -> Iterator[World]:
    """The hub with the test catalogue, as a client sees it."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    (policies / "analytics.toml").write_text(TEST_CATALOGUE, encoding="utf-8")
    tested = dataclasses.replace(
        hub, settings=hub.settings.model_copy(update={"policy_dir": policies})
    )
    tested.rollup_cache.forget()
    with TestClient(create_app(tested)) as client:
        yield World(client, tested)
    tested.rollup_cache.forget()
    wipe(hub.engine)


def _roll_up(world: World) -> None:
    with world.hub.sessions() as session, session.begin():
        while rollups.build_round(session, world.hub.keyring):
            pass


def _shops_selling(world: World, consumer: Actor, sku: str, count: int) -> list[ShopSetup]:
    shops = []
    for n in range(count):
        shop = world.shop(f"{sku} seller {n}")
        world.ingest(shop, "sales", [sale(n, at=WEEK, sku=sku, event_id=f"{sku}-{n}")])
        world.grant(shop, consumer, "analytics", ["sales"])
        shops.append(shop)
    return shops


def _ask(consumer: Actor, **overrides: Any) -> Any:
    body = {
        "purpose": "analytics",
        "category": "sales",
        "measures": ["count", "sum_quantity"],
        "group_by": ["sku"],
        "since": "2026-11-16T00:00:00Z",
        "until": "2026-11-23T00:00:00Z",
        "epsilon": 40.0,
    } | overrides
    return consumer.post("/v1/analytics/queries", body)


def test_a_cell_is_released_only_when_enough_shops_back_it(world: World) -> None:
    analyst = world.consumer("Market Lens")
    _shops_selling(world, analyst, "SKU-FEW", 3)
    _shops_selling(world, analyst, "SKU-MANY", 12)
    # One shop with a thousand lines is still one shop.
    busy = world.shop("busy")
    lines = [sale(n, at=WEEK, sku="SKU-BUSY", event_id=f"B-{n}") for n in range(1000)]
    world.ingest(busy, "sales", lines)
    world.grant(busy, analyst, "analytics", ["sales"])
    _roll_up(world)

    answer = _ask(analyst, measures=["count"], epsilon=100.0)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [cell["sku"] for cell in body["cells"]] == ["SKU-MANY"]
    assert body["suppressed"] == 2
    assert body["shops"] == 16
    # ε 50 for the count: a scale of 1, so 12 lines come back as 12 give or take ~21.
    assert body["noise"]["scale"]["count"] == pytest.approx(1.0, rel=1e-3)
    assert abs(body["cells"][0]["count"] - 12) < _noise_bound(body["noise"]["scale"]["count"])
    assert body["noise"]["threshold"] >= 10


def test_a_shop_adds_to_no_more_cells_than_the_catalogue_allows(world: World) -> None:
    """Twelve shops sell the same twelve SKUs: every SKU has twelve shops behind it, but at
    one cell a shop, each shop counts towards one SKU only, and no cell keeps ten shops.

    Each shop's cell is drawn afresh per query; ten of twelve shops landing on one SKU
    by chance is rarer than one in a billion.
    """
    analyst = world.consumer()
    skus = [f"SKU-{n}" for n in range(12)]
    for n in range(12):
        shop = world.shop(f"twelve-product shop {n}")
        world.ingest(shop, "sales", [sale(m, at=WEEK, sku=sku) for m, sku in enumerate(skus)])
        world.grant(shop, analyst, "analytics", ["sales"])
    _roll_up(world)

    body = _ask(analyst).json()

    assert body["cells"] == []
    assert 1 <= body["suppressed"] <= 12
    assert body["shops"] == 12


def test_the_budget_runs_out_exactly_and_a_refused_query_spends_nothing(world: World) -> None:
    analyst = world.consumer()
    _shops_selling(world, analyst, "SKU-MANY", 12)
    _roll_up(world)
    auditor = world.principal("auditor")

    spent = [_ask(analyst, epsilon=100.0) for _ in range(10)]
    over = _ask(analyst, epsilon=0.5)

    assert [a.status_code for a in spent] == [200] * 10
    assert spent[-1].json()["budget"]["epsilon_remaining"] == 0
    assert over.status_code == 403
    assert over.json()["error"] == "privacy_budget_exhausted"
    ledger = auditor.get("/v1/analytics/ledger", consumer_id=analyst.id).json()["spends"]
    assert sum(s["epsilon"] for s in ledger) == 1000
    assert len(ledger) == 10
    queries = [e for e in audit_log(auditor) if e["action"] == "analytics.query"]
    assert len(queries) == 10  # the refused query spent nothing and released nothing


def test_a_revoked_or_erased_shop_drops_out_and_every_query_is_audited(world: World) -> None:
    analyst = world.consumer("Market Lens")
    shops = _shops_selling(world, analyst, "SKU-MANY", 13)
    _roll_up(world)
    auditor = world.principal("auditor")
    before = _ask(analyst, measures=["count"], epsilon=100.0).json()
    revoked, erased = shops[0], shops[1]
    consent = revoked.keeper.get(f"/v1/shops/{revoked.id}/consents").json()["consents"][0]
    revoked.keeper.post(f"/v1/shops/{revoked.id}/consents/{consent['id']}/revoke")
    world.client.post(f"/v1/shops/{erased.id}/erasure", headers=erased.keeper.headers)

    after = _ask(analyst, measures=["count"], epsilon=100.0).json()

    assert (before["shops"], after["shops"]) == (13, 11)
    # A differencing attack learns no more than the noise lets through; both were charged.
    difference = abs(before["cells"][0]["count"] - after["cells"][0]["count"])
    assert difference <= 2 + _noise_bound(after["noise"]["scale"]["count"], draws=2)
    ledger = auditor.get("/v1/analytics/ledger", consumer_id=analyst.id).json()["spends"]
    assert [s["shops"] for s in ledger] == [11, 13]
    queries = [e for e in audit_log(auditor) if e["action"] == "analytics.query"]
    assert [q["details"]["shops"] for q in queries] == [13, 11]
    # Each shop a query counted finds it in its own access log; the revoked one only the first.
    still = shops[2]
    assert [e["action"] for e in audit_log(still.keeper, f"/v1/shops/{still.id}/access-log")].count(
        "analytics.query"
    ) == 2
    counted = audit_log(revoked.keeper, f"/v1/shops/{revoked.id}/access-log")
    assert [e["action"] for e in counted].count("analytics.query") == 1
    privacy_spent = revoked.keeper.get(f"/v1/shops/{revoked.id}/analytics/privacy").json()
    assert privacy_spent == {"epsilon_spent": 100.0, "queries": 1}
    sign_in(world, still.keeper.id)
    portal = world.client.get(
        f"/portal/shops/{still.id}/privacy-spent", headers={"Accept-Language": "en"}
    )
    assert 'data-queries="2"' in portal.text
    assert "ε = 200.00" in portal.text


def test_the_auditors_console_lists_what_each_query_spent(world: World) -> None:
    analyst = world.consumer("Market Lens")
    shops = _shops_selling(world, analyst, "SKU-MANY", 12)
    _roll_up(world)
    _ask(analyst, epsilon=25.0)
    sign_in(world, shops[0].keeper.id)
    assert world.client.get("/console/privacy").status_code in (403, 404)

    sign_in(world, world.principal("auditor").id)
    page = world.client.get("/console/privacy", headers={"Accept-Language": "en"})

    assert page.status_code == 200
    assert page.text.count('class="entry"') == 1
    assert "Market Lens" in page.text
    assert "ε = 25.00" in page.text
    assert "12 shops" in page.text


def test_only_shops_whose_consent_allows_it_are_counted(world: World) -> None:
    grocer = world.consumer()
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1, at=WEEK)])
    world.grant(shop, grocer, "replenishment", ["sales"])
    _roll_up(world)

    assert _ask(grocer).status_code == 404  # only row consents, for another purpose
    assert _ask(grocer, purpose="replenishment").status_code == 404
    bad = _ask(grocer, group_by=["price"], epsilon=1000)
    assert bad.status_code == 422
    assert {f["field"] for f in bad.json()["fields"]} >= {"body.group_by.0", "body.epsilon"}


def test_rollups_are_sealed_and_add_up_the_weeks_sales(world: World) -> None:
    shop = world.shop()
    world.ingest(
        shop,
        "sales",
        [
            sale(1, at=WEEK, sku="SKU-TEA", quantity=2, unit_price_cents=300),
            sale(2, at=WEEK + timedelta(days=2), sku="SKU-TEA", quantity=1, unit_price_cents=300),
            sale(3, at=WEEK, sku="SKU-RICE", quantity=-1, unit_price_cents=900),
        ],
    )
    _roll_up(world)

    with world.hub.sessions() as session:
        from cornerstore.models.analytics import AnalyticsRollup

        (row,) = session.query(AnalyticsRollup).all()
        assert b"SKU-TEA" not in row.sealed
        sums = rollups.open_sums(
            world.hub.keyring, session, row.shop_id, row.week_start, row.key_version, row.sealed
        )
    assert (sums.skus, sums.days, sums.count, sums.quantity, sums.revenue_cents) == (
        ["SKU-RICE", "SKU-TEA", "SKU-TEA"],
        [0, 0, 2],
        [1, 1, 1],
        [-1, 2, 1],
        [-900, 600, 300],
    )


def test_the_noise_has_the_calibrated_scale() -> None:
    """20,000 Laplace draws: their mean absolute value estimates the scale within 5%."""
    cells = 20_000
    counted = Cells(
        ("sku",),
        {"sku": [str(n) for n in range(cells)]},
        np.full(cells, 1_000, dtype=np.int64),
        {"count": np.full(cells, 500.0)},
    )
    released = privacy.release(
        counted,
        epsilon=1.0,
        delta=1e-7,
        min_shops=10,
        max_cells_per_shop=3,
        clamps={"count": (0.0, 50.0)},
    )
    scale = released.noise.scale["count"]
    # The count's share of ε is half (the other half is the threshold's): b = 3 * 50 / 0.5.
    assert scale == pytest.approx(300.0, rel=1e-6)
    assert len(released.cells) == cells
    drawn = [abs(v - 500.0) for v in released.values["count"]]
    assert statistics.fmean(drawn) == pytest.approx(scale, rel=0.05)
    assert released.noise.ci95["count"] == pytest.approx(scale * np.log(20))


def test_sixteen_queries_at_once_never_overspend(world: World, hub: Hub) -> None:
    """Two server processes, 16 queries at once, room in the budget for ten."""
    analyst = world.consumer()
    _shops_selling(world, analyst, "SKU-MANY", 12)
    _roll_up(world)
    policy_dir = str(world.hub.settings.policy_dir)

    with hub_server(
        hub, workers=2, policy_dir=policy_dir, rollup_interval_seconds="3600"
    ) as server:
        body = {
            "purpose": "analytics",
            "category": "sales",
            "measures": ["count"],
            "group_by": ["sku"],
            "epsilon": 100.0,
        }

        def ask(_: int) -> int:
            answer = httpx.post(
                f"{server.base_url}/v1/analytics/queries",
                json=body,
                headers=analyst.headers,
                timeout=60,
            )
            return answer.status_code

        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(ask, range(16)))

    assert sorted(codes) == [200] * 10 + [403] * 6
    auditor = world.principal("auditor")
    ledger = auditor.get("/v1/analytics/ledger", consumer_id=analyst.id).json()["spends"]
    assert sum(s["epsilon"] for s in ledger) == 1000


def test_a_query_without_skus_bounds_a_shops_cells_by_its_shape(world: World) -> None:
    """Grouped by district and week over one week, a shop reaches at most three cells
    (the week, and partial ones at both ends), however high the catalogue's cap."""
    catalogue = world.hub.settings.policy_dir / "analytics.toml"
    catalogue.write_text(
        TEST_CATALOGUE.replace("max_cells_per_shop = 1", "max_cells_per_shop = 50"),
        encoding="utf-8",
    )
    analytics_catalogue.load.cache_clear()
    analyst = world.consumer()
    _shops_selling(world, analyst, "SKU-MANY", 12)
    _roll_up(world)

    by_shape = _ask(analyst, group_by=["district", "week"]).json()
    by_sku = _ask(analyst, group_by=["sku"]).json()

    # ε 40 over the threshold and two measures: 13.33 each; count's clamp is 50.
    assert by_shape["noise"]["scale"]["count"] == pytest.approx(3 * 50 / (40 / 3), rel=1e-3)
    assert by_sku["noise"]["scale"]["count"] == pytest.approx(50 * 50 / (40 / 3), rel=1e-3)


def test_new_sales_and_a_revocation_reach_every_server_process(world: World, hub: Hub) -> None:
    """Two processes with their own caches: sales rolled up in the background are counted,
    and a revoked shop is left out by the very next query, whichever process answers."""
    analyst = world.consumer()
    shops = _shops_selling(world, analyst, "SKU-MANY", 12)
    # Shops that sell nothing yet: at one cell a shop, their first sales make a cell of their own.
    newcomers = []
    for n in range(12):
        newcomer = world.shop(f"newcomer {n}")
        world.grant(newcomer, analyst, "analytics", ["sales"])
        newcomers.append(newcomer)
    _roll_up(world)
    settings = {"policy_dir": str(world.hub.settings.policy_dir), "rollup_interval_seconds": "0.2"}

    with hub_server(hub, workers=2, **settings) as server:

        def ask() -> dict[str, Any]:
            answer = httpx.post(
                f"{server.base_url}/v1/analytics/queries",
                json={
                    "purpose": "analytics",
                    "category": "sales",
                    "measures": ["count"],
                    "group_by": ["sku"],
                    "epsilon": 10.0,
                },
                headers=analyst.headers,
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body

        for n, newcomer in enumerate(newcomers):
            world.ingest(newcomer, "sales", [sale(500 + n, at=WEEK, sku="SKU-NEW")])
        deadline = time.monotonic() + 30
        while "SKU-NEW" not in [cell["sku"] for cell in ask()["cells"]]:
            assert time.monotonic() < deadline, "new sales were never rolled up"
            time.sleep(0.2)

        consent = shops[0].keeper.get(f"/v1/shops/{shops[0].id}/consents").json()["consents"][0]
        shops[0].keeper.post(f"/v1/shops/{shops[0].id}/consents/{consent['id']}/revoke")
        answers = [ask()["shops"] for _ in range(6)]

    assert answers == [23] * 6
