"""The loop over processes: a hub server, the warehouse and both consumers, speaking HTTP.

The same steps as ``make consumers`` (``cornerstore_consumers.walk``), around
the tests' own hub loaded with the demo's shops: approval to the first order,
what each consumer keeps (never a field its purpose does not allow), the
lender's reasons, and revocation to purge.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from cornerstore_consumers.loop import MARKER, consumers, fresh
from cornerstore_consumers.walk import Parties, Shop, StepFailed, Walk, wait_for
from hub.demo import seed
from hub.runtime import Hub
from tests.factories import World
from tests.servers import hub_server

#: Above the database: SQLite alone (tests/conftest.py).
pytestmark = pytest.mark.one_backend


@dataclass
class Loop:
    walk: Walk
    data: Path
    said: list[str]

    def kept(self, consumer: str) -> list[tuple[str, str, dict[str, Any]]]:
        """Every record in a consumer's local store: (shop id, category, record)."""
        with sqlite3.connect(self.data / consumer / "records.db") as db:
            rows = db.execute("SELECT shop_id, category, record FROM records").fetchall()
        return [(shop_id, category, json.loads(body)) for shop_id, category, body in rows]

    def derived(self, consumer: str, shop_id: str) -> list[tuple[str, str]]:
        with sqlite3.connect(self.data / consumer / "state.db") as db:
            rows = db.execute(
                "SELECT kind, status FROM derived WHERE shop_id = ?", (shop_id,)
            ).fetchall()
        return [(kind, status) for kind, status in rows]


@pytest.fixture
def loop(world: World, hub: Hub, tmp_path: Path) -> Iterator[Loop]:
    # Three demo shops: the first two consent to the replenisher and the first
    # to the lender already, so the walk asks the third. Ten weeks of sales
    # give the lender the eight weeks it needs to judge.
    keys = seed(hub, shops_count=3, days=70)
    replenisher, lender = keys.consumers[0][0].api_key, keys.consumers[2][0].api_key
    assert keys.admin is not None
    said: list[str] = []
    with (
        hub_server(hub, webhook_private_hosts='["127.0.0.1"]') as server,
        consumers(tmp_path, server.base_url, replenisher_key=replenisher, lender_key=lender) as (
            warehouse,
            replenishment,
            lending,
        ),
    ):
        parties = Parties(
            hub=server.base_url,
            warehouse=warehouse,
            replenishment=replenishment,
            lender=lending,
            admin_key=keys.admin.api_key,
            replenisher_key=replenisher,
            lender_key=lender,
        )
        walk = Walk(parties, say=said.append)
        try:
            yield Loop(walk, tmp_path, said)
        finally:
            walk.close()


def _allowed(hub: Hub, purpose: str) -> dict[str, set[str]]:
    fields = hub.authorizer.purposes[purpose].fields
    return {category: set(names) for category, names in fields.items()}


def test_a_shop_goes_from_approval_to_order_to_purge_over_http(loop: Loop, hub: Hub) -> None:
    walk = loop.walk
    shop = walk.choose_shop()
    walk.request(shop)
    walk.approve(shop)

    proposed = walk.forecast(shop)
    offered = walk.offer(shop)

    # What each consumer keeps is what its purpose may see, and nothing else.
    for consumer, purpose in (("replenishment", "replenishment"), ("lender", "credit-assessment")):
        allowed = _allowed(hub, purpose)
        kept = loop.kept(consumer)
        assert kept, f"the {consumer} kept nothing it read"
        assert {category for _, category, _ in kept} <= set(allowed)
        for _, category, record in kept:
            assert set(record) <= allowed[category], (consumer, category, sorted(record))
    # The replenisher proposes in the shop's own words: its catalogue's names.
    assert all(
        line["name"] and not line["name"].startswith("SKU-")
        for line in proposed["content"]["lines"]
    )
    assert b"gtin" not in (loop.data / "replenishment" / "records.db").read_bytes()
    lender_file = (loop.data / "lender" / "records.db").read_bytes()
    assert b"payer_ref" not in lender_file
    assert b"payer_pseudonym" in lender_file

    # A revocation that is not the hub's is refused, and purges nothing.
    before = len(loop.kept("replenishment"))
    assert _forged_revocation(walk, shop).status_code == 400
    assert len(loop.kept("replenishment")) == before

    # The offer comes with its reasons in both languages, as the shopkeeper reads them.
    assert offered is not None, loop.said
    reasons = offered["content"]["reasons"]
    assert reasons
    assert all(reason["en"] and reason["zh"] for reason in reasons)
    assert any("¥" in reason["en"] for reason in reasons)

    # Every line is whole cases of what the warehouse sells, with its numbers in words.
    catalogue = httpx.get(f"{walk.parties.warehouse}/catalogue").json()["items"]
    packs = {item["sku"]: item["case_pack"] for item in catalogue}
    lines = proposed["content"]["lines"]
    assert lines
    for line in lines:
        assert line["quantity"] > 0
        assert line["quantity"] % packs[line["sku"]] == 0
        assert "a day" in line["reason"]
        assert "每天" in line["reason"]

    # Nothing is ordered before the shopkeeper accepts; then exactly what they accepted.
    assert httpx.get(f"{walk.parties.replenishment}/shops/{shop.id}").json()["orders"] == []
    placed = walk.order(shop, take=1)
    order = httpx.get(f"{walk.parties.warehouse}/orders/{placed['order_id']}").json()
    accepted = {line["sku"]: line["quantity"] for line in lines}
    accepted[lines[0]["sku"]] = packs[lines[0]["sku"]]
    assert {line["sku"]: line["quantity"] for line in order["lines"]} == accepted
    assert order["shop_ref"] == shop.id
    walk.take_credit(shop)
    walk.deliver(shop, placed["order_id"])

    # A second plan, left unanswered: a pending recommendation when the consent ends.
    again = httpx.post(f"{walk.parties.replenishment}/shops/{shop.id}/plan", timeout=180).json()
    assert again["outcome"].startswith("proposed"), again
    assert ("recommendation", "pending") in loop.derived("replenishment", shop.id)
    pending = _pending_order(walk, shop)

    walk.revoke(shop)
    walk.purged(shop)

    # Its reads stop, its rows of the shop are gone to the last byte, the pending plan is dropped.
    for consumer in ("replenishment", "lender"):
        assert [row for row in loop.kept(consumer) if row[0] == shop.id] == []
        assert shop.id.encode() not in (loop.data / consumer / "records.db").read_bytes()
        assert loop.derived(consumer, shop.id) == []
    answer = httpx.post(
        f"{walk.parties.hub}/v1/shops/{shop.id}/proposals/{pending}/answer",
        json={"decision": "accept"},
        headers={"Authorization": f"Bearer {shop.keeper_key}"},
    )
    assert answer.status_code == 409
    # The order the shopkeeper placed stays theirs: a purchase, not a record read from the hub.
    kept_orders = httpx.get(f"{walk.parties.replenishment}/shops/{shop.id}").json()["orders"]
    assert [o["status"] for o in kept_orders] == ["delivered"]
    assert any("404 not_found" in line for line in loop.said)


def _pending_order(walk: Walk, shop: Shop) -> str:
    def found() -> str | None:
        proposals = httpx.get(
            f"{walk.parties.hub}/v1/shops/{shop.id}/proposals",
            headers={"Authorization": f"Bearer {shop.keeper_key}"},
        ).json()["proposals"]
        waiting = [p["id"] for p in proposals if p["status"] == "pending"]
        return str(waiting[0]) if waiting else None

    return wait_for("the second proposal", found)


def _forged_revocation(walk: Walk, shop: Shop) -> httpx.Response:
    forged = {
        "event_id": "00000000-0000-0000-0000-000000000001",
        "type": "consent.status_changed",
        "consent_id": shop.consents["replenishment"],
        "shop_id": shop.id,
        "status": "revoked",
        "change": "revoked",
    }
    return httpx.post(
        f"{walk.parties.replenishment}/webhooks/cornerstore",
        json=forged,
        headers={
            "webhook-id": forged["event_id"],
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,bm90IHRoZSBodWIncyBzaWduYXR1cmU=",
        },
    )


def test_the_loop_empties_only_a_folder_of_its_own(tmp_path: Path) -> None:
    """``--data`` names where the demo lives; a folder it did not make is refused, not emptied."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("years of work")
    with pytest.raises(StepFailed, match="did not make"):
        fresh(theirs)
    assert (theirs / "thesis.tex").exists()

    ours = tmp_path / "ours"
    fresh(ours)
    (ours / "hub.log").write_text("a run")
    fresh(ours)
    assert sorted(p.name for p in ours.iterdir()) == [MARKER]
