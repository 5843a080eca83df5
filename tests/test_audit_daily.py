"""The per-day counts the console's charts draw: exact whether counted yet or not, never twice."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from audit import daily
from tests.factories import World, audit_log, sale

Kind = tuple[str, str, str, str | None, str]
Reader = tuple[uuid.UUID, str | None]


def _expected(events: list[dict[str, Any]]) -> tuple[Counter[Kind], Counter[Reader]]:
    """The counts, straight from the log's events as the API lists them."""
    days: Counter[Kind] = Counter()
    readers: Counter[Reader] = Counter()
    for event in events:
        denied = event["decision"] == "deny"
        days[
            (
                event["recorded_at"][:10],
                event["action"],
                event["decision"],
                event["purpose"],
                event["reason"] if denied else "",
            )
        ] += 1
        if event["action"] == "read" and not denied:
            readers[(uuid.UUID(event["principal_id"]), event["purpose"])] += 1
    return days, readers


def _shown(world: World) -> tuple[Counter[Kind], Counter[Reader]]:
    since = datetime.now(UTC) - timedelta(days=2)
    with world.hub.sessions() as session:
        counts = daily.counts_since(session, since)
    days: Counter[Kind] = Counter()
    for c in counts.days:
        days[(c.day, c.action, c.decision, c.purpose, c.reason)] += c.count
    return days, Counter(counts.readers)


def _count(world: World, limit: int = daily.ROUND_LIMIT) -> None:
    with world.hub.sessions() as session, session.begin():
        daily.count_new(session, limit=limit)


def _busy_log(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(n) for n in range(3)])
    grocer, lender = world.consumer(), world.consumer()
    world.grant(shop, grocer, "replenishment", ["sales"])
    for _ in range(3):
        grocer.get(f"/v1/shops/{shop.id}/sales", purpose="replenishment")
    lender.get(f"/v1/shops/{shop.id}/sales", purpose="credit-assessment")  # refused
    shop.keeper.post(f"/v1/shops/{shop.id}/pause-sharing")
    grocer.get(f"/v1/shops/{shop.id}/sales", purpose="replenishment")  # refused: paused


def test_the_counts_match_the_log_before_during_and_after_counting(world: World) -> None:
    _busy_log(world)
    auditor = world.principal("auditor")
    expected = _expected(audit_log(auditor))
    assert any(kind[2] == "deny" for kind in expected[0])
    assert sum(expected[1].values()) == 3  # the grocer's reads

    assert _shown(world) == expected  # however much the background rounds have counted
    _count(world, limit=5)  # part of the log kept, the rest read as it is
    assert _shown(world) == expected
    _count(world)
    _count(world)  # nothing left: counting again adds nothing
    assert _shown(world) == expected


def test_new_entries_are_shown_before_they_are_counted(world: World) -> None:
    _busy_log(world)
    _count(world)
    auditor = world.principal("auditor")
    shop = world.shop()
    world.ingest(shop, "sales", [sale(9)])

    assert _shown(world) == _expected(audit_log(auditor))


def test_the_api_gives_the_charts_counts_to_auditors_only(world: World) -> None:
    _busy_log(world)
    auditor = world.principal("auditor")
    expected_days, expected_readers = _expected(audit_log(auditor))

    answer = auditor.get("/v1/audit/counts", days=2)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    days: Counter[Kind] = Counter()
    for c in body["days"]:
        days[(c["day"], c["action"], c["decision"], c["purpose"], c["reason"])] += c["count"]
    readers = Counter(
        {(uuid.UUID(r["principal_id"]), r["purpose"]): r["count"] for r in body["readers"]}
    )
    # The auditor's own listing of the log, above, came after: it is in neither.
    assert days == expected_days
    assert readers == expected_readers
    assert auditor.get("/v1/audit/counts", days=0).status_code == 422
    assert world.consumer().get("/v1/audit/counts").status_code in (403, 404)
