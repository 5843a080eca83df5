"""The replenishment consumer's work: ask, plan when allowed, propose, order once accepted.

    consent approved  → read sales and inventory, forecast, propose an order
    proposal answered → accepted: place it with the warehouse (once: the
                        proposal's id is the idempotency key); declined: note it
    consent ended     → the runtime purges the records and drops the recommendations

Nothing is ordered on a shop's behalf but what its shopkeeper accepted,
with the quantities they set.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cornerstore_client import Consent, OrderLine, Proposal, PurchaseOrder
from cornerstore_consumers.replenishment.orders import Orders
from cornerstore_consumers.replenishment.planner import PURPOSE, plan, product_names
from cornerstore_consumers.replenishment.recommend import Line, Supply
from cornerstore_consumers.runtime import Runtime, Terms
from cornerstore_consumers.warehouse.client import WarehouseClient, WarehouseRefused

TERMS = Terms(
    purpose=PURPOSE,
    categories=["sales", "inventory", "catalogue"],
    # A week's plans and then some; the purpose allows no more (policies/purposes.toml).
    data_life="P30D",
    lasts=timedelta(days=365),
)
#: What its derived rows are called (:mod:`cornerstore_consumers.derived`).
RECOMMENDATION = "recommendation"


def reason(line: Line) -> str:
    """Why this many, in the shopkeeper's words and numbers (Chinese first, then English)."""
    waiting = f"，已订 {line.on_order} 件" if line.on_order else ""  # noqa: RUF001
    waiting_en = f", {line.on_order} on order" if line.on_order else ""
    return (
        f"每天约卖 {line.daily_demand:.1f} 件，货架上 {line.on_hand} 件{waiting}；"  # noqa: RUF001
        f"到下次到货前需要约 {line.order_up_to:.0f} 件。"
        f" Sells about {line.daily_demand:.1f} a day, {line.on_hand} on the shelf{waiting_en};"
        f" about {line.order_up_to:.0f} needed until the next delivery."
    )


class Replenisher:
    def __init__(
        self,
        runtime: Runtime,
        warehouse: WarehouseClient,
        *,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.runtime = runtime
        self.warehouse = warehouse
        self.orders = Orders(runtime.db)
        self._today = today

    def on_consent(self, consent: Consent, key: str) -> str:
        return self.recommend(consent, key)

    def on_answer(self, proposal: Proposal) -> str:
        return self.order(proposal)

    def recommend(self, consent: Consent, key: str) -> str:
        """Plan the shop's order under ``consent``, and propose it (once for ``key``)."""
        catalogue = self.warehouse.catalogue()
        supply = {
            sku: Supply(int(item["case_pack"]), int(item["lead_time_days"]))
            for sku, item in catalogue.items.items()
        }
        shop_id = str(consent.shop_id)
        lines = plan(
            self.runtime.client,
            self.runtime.store,
            consent,
            supply,
            today=self._today(),
            on_order=self.orders.on_order(shop_id),
        )
        if not lines:
            return "nothing runs short"
        # The shop's own names where it shares its catalogue; the warehouse's otherwise.
        names = product_names(self.runtime.client, self.runtime.store, consent)
        proposal = self.runtime.client.propose(
            shop_id,
            PurchaseOrder(
                warehouse=catalogue.warehouse,
                lines=[
                    OrderLine(
                        sku=line.sku,
                        name=names.get(line.sku) or str(catalogue.items[line.sku]["name"]),
                        quantity=line.quantity,
                        case_pack=supply[line.sku].case_pack,
                        reason=reason(line),
                    )
                    for line in lines
                ],
            ),
            idempotency_key=key,
        )
        self.runtime.derived.keep(
            str(proposal.id),
            consent,
            RECOMMENDATION,
            {"lines": [line.__dict__ for line in lines]},
            "pending",
        )
        return f"proposed an order of {len(lines)} lines"

    def order(self, proposal: Proposal) -> str:
        """Place what the shopkeeper accepted, as they accepted it; note a refusal."""
        proposal_id = str(proposal.id)
        if proposal.status != "accepted":
            self.runtime.derived.set_status(proposal_id, proposal.status)
            return f"the shopkeeper {proposal.status} it"
        self.runtime.derived.set_status(proposal_id, "accepted")
        answer = proposal.answer or {}
        lines = [
            {"sku": str(line["sku"]), "quantity": int(line["quantity"])}
            for line in answer.get("lines", [])
            if int(line["quantity"]) > 0
        ]
        if not lines:
            return "accepted with nothing to order"
        try:
            placed = self.warehouse.place(proposal_id, str(proposal.shop_id), lines)
        except WarehouseRefused as exc:
            return f"the warehouse refused the order: {exc}"
        self.orders.ordered(proposal_id, placed)
        return f"ordered from the warehouse: order {placed['id']}"

    # --- what it can tell ---------------------------------------------------------------------

    def close(self) -> None:
        self.warehouse.close()

    def shop(self, shop_id: str) -> dict[str, Any]:
        """What this consumer holds of a shop, with its orders' status fresh from the warehouse."""
        key = shop_id
        for order in self.orders.of_shop(key):
            if order["status"] != "delivered":
                found = self.warehouse.order(order["order_id"])
                self.orders.status(order["order_id"], found["status"], found["delivered_at"])
        return {
            "shop_id": key,
            "records_kept": self.runtime.kept(key),
            "recommendations": self.runtime.derived.of_shop(key),
            "orders": self.orders.of_shop(key),
        }
