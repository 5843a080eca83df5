"""The reference consumers' own rules, on data whose answer is known: forecasts, orders,
scorecards and offers, and the warehouse's orders placed once."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from cornerstore_client import Consent, Proposal
from cornerstore_consumers.database import Database
from cornerstore_consumers.inbox import MAX_ATTEMPTS, Inbox
from cornerstore_consumers.inbox import SCHEMA as INBOX_SCHEMA
from cornerstore_consumers.lender.offer import offer
from cornerstore_consumers.lender.scorecard import score
from cornerstore_consumers.replenishment import forecast as demand
from cornerstore_consumers.replenishment.recommend import Supply, line, order_up_to
from cornerstore_consumers.replenishment.service import TERMS
from cornerstore_consumers.runtime import ConsumerSettings, Runtime
from cornerstore_consumers.warehouse.app import create_app
from cornerstore_consumers.warehouse.store import Item
from tests.scripted import Scripted

FIRST = date(2026, 1, 5)  # a Monday


def _history(days: int = 140) -> pd.DataFrame:
    """A slow SKU (a unit every few days) and a fast one with a weekly rhythm."""
    rng = np.random.default_rng(7)
    ds = pd.date_range(FIRST.isoformat(), periods=days, freq="D")
    weekly = np.array([0.6, 0.7, 0.8, 1.0, 1.3, 1.6, 1.0])
    slow = rng.poisson(0.25, days)
    fast = rng.poisson(10 * weekly[np.arange(days) % 7])
    return pd.concat(
        [
            pd.DataFrame({"unique_id": "SKU-SOAP", "ds": ds, "y": slow.astype(float)}),
            pd.DataFrame({"unique_id": "SKU-WATER", "ds": ds, "y": fast.astype(float)}),
        ],
        ignore_index=True,
    )


def test_each_sku_gets_the_model_its_backtest_favours_and_14_days_ahead() -> None:
    forecasts = demand.forecast(_history())

    soap, water = (_choice(forecasts, sku) for sku in ("SKU-SOAP", "SKU-WATER"))
    assert (soap["sku_class"], water["sku_class"]) == ("intermittent", "fast")
    assert soap["model"] in demand.INTERMITTENT
    # The weekly rhythm is worth modelling: the chosen model beats seasonal naive.
    assert water["mase"] < water["baseline_mase"]
    ahead: dict[str, list[float]] = {}
    for row in forecasts.demand.to_dict("records"):
        ahead.setdefault(str(row["unique_id"]), []).append(float(row["demand"]))
    assert {sku: len(days) for sku, days in ahead.items()} == {"SKU-SOAP": 14, "SKU-WATER": 14}
    assert min(ahead["SKU-SOAP"] + ahead["SKU-WATER"]) >= 0
    # The weekly pattern averages 1.0, so the fast SKU sells about 10 a day.
    assert sum(ahead["SKU-WATER"]) / 14 == pytest.approx(10, rel=0.25)
    assert sorted(forecasts.mase_by_class().index) == ["fast", "intermittent"]


def _choice(forecasts: demand.Forecasts, sku: str) -> dict[str, Any]:
    [row] = [r for r in forecasts.choices.to_dict("records") if r["unique_id"] == sku]
    return {str(k): v for k, v in row.items()}


def test_days_without_sales_are_zeros_and_a_short_history_falls_back() -> None:
    lines = pd.DataFrame(
        {
            "unique_id": ["SKU-NEW", "SKU-NEW", "SKU-NEW"],
            "ds": pd.to_datetime(["2026-03-01", "2026-03-01", "2026-03-04"]),
            "y": [1.0, 2.0, 1.0],
        }
    )
    filled = demand.fill_days(lines)
    assert filled["y"].tolist() == [3.0, 0.0, 0.0, 1.0]

    forecasts = demand.forecast(filled)
    [choice] = forecasts.choices.to_dict("records")
    assert choice["model"] == "CrostonSBA"
    assert np.isnan(choice["mase"])
    assert len(forecasts.demand) == demand.HORIZON


def test_an_order_covers_lead_time_and_review_with_safety_stock_in_whole_cases() -> None:
    supply = Supply(case_pack=6, lead_time_days=3)
    # 2 a day over 3 + 7 days, plus 1.645 * 1 * sqrt(10) of safety stock: 25.2.
    assert order_up_to([2.0] * 14, 1.0, supply) == pytest.approx(20 + 1.6449 * 10**0.5, rel=1e-3)

    ordered = line("SKU-TEA", [2.0] * 14, 1.0, supply, on_hand=4)

    assert ordered is not None
    assert ordered.quantity == 24  # 21.2 short: four cases of six
    assert line("SKU-TEA", [2.0] * 14, 1.0, supply, on_hand=20, on_order=6) is None


def _payments(days: int, per_day: list[int]) -> list[dict[str, Any]]:
    """A payment on each day whose amount (repeating ``per_day``) is not zero: Mondays' and
    Tuesdays' from two regulars, every other day's from someone seen once."""
    out = []
    for n in range(days):
        amount = per_day[n % len(per_day)]
        if amount:
            payer = {0: "regular-a", 1: "regular-b"}.get(n % 7, f"once-{n}")
            out.append(
                {
                    "occurred_at": f"{(FIRST + timedelta(days=n)).isoformat()}T10:00:00Z",
                    "amount_cents": amount,
                    "method": "qr",
                    "payer_pseudonym": payer,
                }
            )
    return out


def test_the_scorecard_counts_what_a_shopkeeper_can_check() -> None:
    # Twelve weeks of six trading days at ¥100 and a closed Sunday.
    payments = _payments(84, [10_000] * 6 + [0])

    card = score(payments, [], first_day=FIRST, last_day=FIRST + timedelta(days=83))

    assert card.days == 84
    assert card.mean_daily_cents == pytest.approx(10_000 * 6 / 7)
    assert card.zero_day_share == pytest.approx(1 / 7)
    assert card.longest_zero_streak == 1
    assert card.drawdown == 0.0
    assert card.repeat_payer_share == pytest.approx(2 / 50)  # 2 regulars, 48 seen once


def test_an_offer_starts_at_a_months_takings_and_says_why_it_is_less() -> None:
    steady = score(_payments(84, [10_000] * 7), [], first_day=FIRST, last_day=FIRST + timedelta(83))
    # A closed week, then the last four weeks take less than half the four before.
    falling_days = [20_000] * 42 + [0] * 7 + [20_000] * 7 + [8_000] * 28
    falling = score(
        _payments(84, falling_days), [], first_day=FIRST, last_day=FIRST + timedelta(83)
    )

    good, worse = offer(steady), offer(falling)

    assert good.line_cents == pytest.approx(steady.mean_monthly_cents, rel=0.01)
    assert [r.code for r in good.reasons] == ["monthly_volume"]
    assert worse.line_cents < good.line_cents
    assert {"closed_spell", "recent_drop", "falling"} <= {r.code for r in worse.reasons}
    assert all(r.en and r.zh for r in worse.reasons)
    short = offer(score([], [], first_day=FIRST, last_day=FIRST + timedelta(days=9)))
    assert not short.offered
    assert [r.code for r in short.reasons] == ["short_history"]


@pytest.fixture
def warehouse(tmp_path: Path) -> TestClient:
    app = create_app(tmp_path / "warehouse.db")
    app.state.warehouse.stock([Item("SKU-TEA", "Green tea 绿茶", 6, 2, 60)])
    return TestClient(app)


def test_an_order_is_placed_once_per_idempotency_key(warehouse: TestClient) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    order = {"shop_ref": "shop-1", "lines": [{"sku": "SKU-TEA", "quantity": 12}]}

    first = warehouse.post("/orders", json=order, headers=key)
    again = warehouse.post("/orders", json=order, headers=key)
    other = warehouse.post(
        "/orders", json={**order, "lines": [{"sku": "SKU-TEA", "quantity": 6}]}, headers=key
    )

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json()["id"] == first.json()["id"]
    assert warehouse.get("/catalogue").json()["items"][0]["stock"] == 48  # taken once
    loose = warehouse.post(
        "/orders",
        json={**order, "lines": [{"sku": "SKU-TEA", "quantity": 5}]},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert loose.status_code == 422
    assert "cases of 6" in loose.json()["detail"]
    delivered = warehouse.post(f"/orders/{first.json()['id']}/deliver").json()
    assert delivered["status"] == "delivered"
    assert warehouse.get(f"/orders/{first.json()['id']}").json()["status"] == "delivered"


# --- a consumer's inbox -------------------------------------------------------------------------


def _inbox(tmp_path: Path) -> Inbox:
    return Inbox(Database(tmp_path / "state.db", INBOX_SCHEMA))


def test_an_event_delivered_twice_is_handled_once(tmp_path: Path) -> None:
    inbox = _inbox(tmp_path)
    event = {"event_id": str(uuid.uuid4()), "type": "proposal.answered", "proposal_id": "p"}
    assert inbox.add(event)
    assert not inbox.add(event)
    assert inbox.next() == event
    inbox.done(event["event_id"], "ordered")
    assert inbox.next() is None
    assert not inbox.add(event)  # handled already: a late retry by the hub changes nothing
    assert inbox.pending() == 0


def test_a_failing_event_waits_longer_each_time_and_is_left_with_its_reason(
    tmp_path: Path,
) -> None:
    inbox = _inbox(tmp_path)
    first, second = ({"event_id": str(uuid.uuid4()), "type": "t"} for _ in range(2))
    inbox.add(first, now=0)
    inbox.add(second, now=1)
    inbox.failed(first["event_id"], "ConnectError", now=10)
    # The failed one waits its turn; the next event is not held up behind it.
    assert inbox.next(now=10) == second
    inbox.done(second["event_id"], "ok")
    assert inbox.next(now=11) is None
    assert inbox.next(now=12) == first
    for attempt in range(2, MAX_ATTEMPTS + 1):
        inbox.failed(first["event_id"], "ConnectError", now=100 * attempt)
    assert inbox.next(now=10**9) is None
    newest, oldest = inbox.recent()
    assert (newest["event_id"], newest["outcome"]) == (second["event_id"], "ok")
    assert (oldest["outcome"], oldest["attempts"]) == ("gave up: ConnectError", MAX_ATTEMPTS)


# --- what a consumer's worker does with each answer ------------------------------------------


class _Refuses:
    """A consumer whose work never starts: the hub's answers decide each event."""

    def on_consent(self, consent: Consent, key: str) -> str:
        raise AssertionError("never reached: the hub refused first")

    def on_answer(self, proposal: Proposal) -> str:
        raise AssertionError("never reached: the hub refused first")

    def shop(self, shop_id: str) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "headers", "body", "retried", "waits_at_least"),
    [
        # Gone for good: the answer is the outcome, and the event is done.
        (404, {}, {"error": "not_found", "detail": "no such proposal"}, False, 0),
        (409, {}, {"error": "conflict", "detail": "answered"}, False, 0),
        # Busy, or our key rotated under us: tried again, no sooner than asked.
        (429, {"Retry-After": "600"}, {"error": "too_many_requests", "detail": "slow"}, True, 600),
        (401, {}, {"error": "unauthenticated", "detail": "key"}, True, 2),
        (503, {"Retry-After": "900"}, {"error": "unavailable", "detail": "later"}, True, 900),
    ],
)
def test_the_worker_retries_what_may_pass_and_ends_what_will_not(
    scripted: tuple[str, type[Scripted]],
    tmp_path: Path,
    status: int,
    headers: dict[str, str],
    body: dict[str, str],
    retried: bool,
    waits_at_least: float,
) -> None:
    url, hub = scripted
    hub.script.append((status, headers, json.dumps(body).encode()))
    settings = ConsumerSettings(url, "cs_test", "http://127.0.0.1:1", tmp_path)
    runtime = Runtime(settings, TERMS, "")
    event = {"event_id": str(uuid.uuid4()), "type": "proposal.answered", "proposal_id": "p"}
    runtime.inbox.add(event)
    started = time.time()
    try:
        runtime._handle(_Refuses(), event)
        [handled] = runtime.inbox.recent()
    finally:
        runtime.stop()
    assert hub.script == []  # the hub was asked once: the SDK's own retries stop at long waits
    if retried:
        assert handled["done_at"] is None
        assert handled["outcome"].startswith("will retry")
        [due] = Database(tmp_path / "state.db", "").rows("SELECT due_at FROM inbox")
        assert due["due_at"] >= started + waits_at_least
    else:
        assert handled["done_at"] is not None
        assert handled["outcome"] == f"refused by the hub: {body['error']}"
