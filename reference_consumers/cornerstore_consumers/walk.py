"""The loop a shop goes around with its consumers, step by step, over HTTP, saying each step.

    request → approve → read → forecast → order → deliver → revoke → purge

The shopkeeper's part (approve, accept, revoke) is what the portal's buttons
send; here it is sent with the shopkeeper's key. ``make consumers`` walks it
around a demo hub (:mod:`cornerstore_consumers.loop`); the end-to-end test
walks the same steps around its own.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx2 as httpx

from cornerstore_client.store import data_life

T = TypeVar("T")

#: How long a step may take before the walk gives up on it (a forecast takes seconds).
STEP_SECONDS = 90.0


class StepFailed(Exception):
    """A step did not come about in time; the message says which and what was seen last."""


@dataclass(frozen=True)
class Parties:
    """Where everyone is, and the keys the walk acts with."""

    hub: str
    warehouse: str
    replenishment: str
    lender: str
    #: The operator's: to find a shop no consumer asked yet, and give its keeper a key.
    admin_key: str
    #: The consumers' own: to show that their reads stop after the revocation.
    replenisher_key: str
    lender_key: str


@dataclass
class Shop:
    id: str
    name: str
    keeper_key: str
    consents: dict[str, str] = field(default_factory=dict)
    proposals: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: How many of the shop's records each consumer held just before the revocation.
    held: dict[str, int] = field(default_factory=dict)


def wait_for(what: str, probe: Callable[[], T | None], *, seconds: float = STEP_SECONDS) -> T:
    """``probe()`` once it answers something, checking every tenth of a second."""
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise StepFailed(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.1)


def say(text: str) -> None:
    """One line of the walk's story, on standard output at once."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _yuan(cents: int) -> str:
    return f"¥{cents / 100:,.0f}"


class Walk:
    def __init__(self, parties: Parties, say: Callable[[str], None] = say) -> None:
        self.parties = parties
        self.say = say
        self.http = httpx.Client(timeout=30.0)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, url: str, key: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = self.http.request(method, url, headers=headers, **kwargs)
        if response.is_error:
            raise StepFailed(f"{method} {url}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def _hub(self, method: str, path: str, key: str, **kwargs: Any) -> Any:
        return self._call(method, self.parties.hub + path, key, **kwargs)

    # --- the steps --------------------------------------------------------------------------

    def choose_shop(self) -> Shop:
        """A shop neither consumer has asked yet (the demo consents its first shops)."""
        admin = self.parties.admin_key
        keepers = self._hub("GET", "/v1/principals?role=shopkeeper&limit=1000", admin)
        for keeper in reversed(keepers["principals"]):
            shop_id = str(keeper["shop_ids"][0])
            key = self._hub("POST", f"/v1/principals/{keeper['id']}/keys", admin)["api_key"]
            held = self._hub("GET", f"/v1/shops/{shop_id}/consents", key)["consents"]
            if not any(c["purpose"] in ("replenishment", "credit-assessment") for c in held):
                name = self._hub("GET", f"/v1/shops/{shop_id}", admin)["name"]
                self.say(f"the shop: {name} ({shop_id})")
                return Shop(shop_id, name, key)
        raise StepFailed("every demo shop has been asked already: run with a fresh demo")

    def request(self, shop: Shop) -> None:
        for consumer, url in (
            ("replenishment", self.parties.replenishment),
            ("credit-assessment", self.parties.lender),
        ):
            asked = self._call("POST", f"{url}/shops/{shop.id}/consent-request")
            shop.consents[consumer] = str(asked["id"])
            self.say(
                f"  {asked['consumer_name']} asks for {consumer} consent to read "
                f"{' and '.join(asked['categories'])}, and to keep it "
                f"{data_life(asked['data_life']).days} days at most"
            )

    def approve(self, shop: Shop) -> None:
        for purpose, consent_id in shop.consents.items():
            path = f"/v1/shops/{shop.id}/consent-requests/{consent_id}/approve"
            self._hub("POST", path, shop.keeper_key)
            self.say(f"  the shopkeeper approves {purpose}")

    def _consumers(self) -> tuple[tuple[str, str], ...]:
        return (("replenisher", self.parties.replenishment), ("lender", self.parties.lender))

    def _status(self, url: str, shop: Shop) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", f"{url}/shops/{shop.id}")
        return found

    def _pending(self, kind: str, shop: Shop) -> list[dict[str, Any]]:
        """The hub's pending proposals of ``kind`` to the shop, as its shopkeeper sees them."""
        found = self._hub("GET", f"/v1/shops/{shop.id}/proposals", shop.keeper_key)["proposals"]
        return [p for p in found if p["kind"] == kind and p["status"] == "pending"]

    def forecast(self, shop: Shop) -> dict[str, Any]:
        """Wait for the replenisher's proposal; say what it read and what it proposes."""
        [proposal] = wait_for(
            "the replenisher's proposed order",
            lambda: self._pending("purchase-order", shop) or None,
        )
        shop.proposals["purchase-order"] = proposal
        kept = self._status(self.parties.replenishment, shop)["records_kept"]
        self.say(
            f"  the replenisher read {kept['sales']:,} sales lines, {kept['inventory']:,} "
            f"stock counts and {kept['catalogue']:,} products, kept under the consent's data life"
        )
        lines = proposal["content"]["lines"]
        self.say(f"  it forecasts 14 days per SKU and proposes {len(lines)} lines:")
        for line in lines:
            cases = f"({line['quantity'] // line['case_pack']} cases of {line['case_pack']})"
            name = line.get("name") or line["sku"]
            self.say(f"    {line['quantity']:>4} {cases:<18} {name}")
        return dict(proposal)

    def offer(self, shop: Shop) -> dict[str, Any] | None:
        """Wait for the lender's answer: an offer, said with its reasons, or none (and why)."""

        def answer() -> dict[str, Any] | None:
            pending = self._pending("credit-offer", shop)
            if pending:
                return dict(pending[0])
            declined = [
                a
                for a in self._status(self.parties.lender, shop)["assessments"]
                if a["status"] == "no offer"
            ]
            return {"assessment": declined[0]} if declined else None

        found = wait_for("the lender's assessment", answer)
        if "assessment" in found:
            self.say("  the lender offers no line, because:")
            reasons = found["assessment"]["body"]["reasons"]
        else:
            shop.proposals["credit-offer"] = found
            content = found["content"]
            reasons = content["reasons"]
            self.say(
                f"  the lender offers {_yuan(content['line_cents'])} at "
                f"{content['annual_rate']:.1%} a year, because:"
            )
        for reason in reasons:
            self.say(f"    - {reason['en']}")
            self.say(f"      {reason['zh']}")
        return None if "assessment" in found else found

    def order(self, shop: Shop, *, take: int | None = None) -> dict[str, Any]:
        """The shopkeeper accepts the order (the first line cut to ``take`` cases, if given)."""
        proposal = shop.proposals["purchase-order"]
        lines = [{"sku": x["sku"], "quantity": x["quantity"]} for x in proposal["content"]["lines"]]
        if take is not None:
            first = proposal["content"]["lines"][0]
            lines[0]["quantity"] = take * first["case_pack"]
            name = first.get("name") or first["sku"]
            self.say(f"  the shopkeeper changes {name} to {take} cases, and accepts")
        else:
            self.say("  the shopkeeper accepts the order as proposed")
        path = f"/v1/shops/{shop.id}/proposals/{proposal['id']}/answer"
        self._hub("POST", path, shop.keeper_key, json={"decision": "accept", "lines": lines})
        placed: dict[str, Any] = wait_for(
            "the order at the warehouse",
            lambda: next(iter(self._status(self.parties.replenishment, shop)["orders"]), None),
        )
        self.say(
            f"  the replenisher places order {placed['order_id']} with the warehouse "
            f"(idempotency key: the proposal's id); it arrives by {placed['arrives_by'][:10]}"
        )
        return placed

    def take_credit(self, shop: Shop) -> dict[str, Any]:
        proposal = shop.proposals["credit-offer"]
        path = f"/v1/shops/{shop.id}/proposals/{proposal['id']}/answer"
        self._hub("POST", path, shop.keeper_key, json={"decision": "accept"})
        line: dict[str, Any] = wait_for(
            "the credit line",
            lambda: next(iter(self._status(self.parties.lender, shop)["credit_lines"]), None),
        )
        self.say(f"  the shopkeeper takes the credit line: {_yuan(line['line_cents'])} is open")
        return line

    def deliver(self, shop: Shop, order_id: str) -> None:
        self._call("POST", f"{self.parties.warehouse}/orders/{order_id}/deliver")

        def delivered() -> bool | None:
            orders = self._status(self.parties.replenishment, shop)["orders"]
            return True if orders and orders[0]["status"] == "delivered" else None

        wait_for("the delivery, as the replenisher sees it", delivered)
        self.say(f"  the warehouse delivers order {order_id}; the replenisher sees it delivered")

    def revoke(self, shop: Shop) -> None:
        for name, url in self._consumers():
            shop.held[name] = sum(self._status(url, shop)["records_kept"].values())
        for purpose, consent_id in shop.consents.items():
            self._hub("POST", f"/v1/shops/{shop.id}/consents/{consent_id}/revoke", shop.keeper_key)
            self.say(f"  the shopkeeper revokes {purpose}")

    def purged(self, shop: Shop) -> dict[str, dict[str, Any]]:
        """Wait until neither consumer holds a record or a derived row of the shop; say so."""
        held: dict[str, dict[str, Any]] = {}
        for name, url in self._consumers():

            def empty(url: str = url) -> dict[str, Any] | None:
                status = self._status(url, shop)
                derived = status.get("recommendations", status.get("assessments"))
                gone = not any(status["records_kept"].values()) and not derived
                return status if gone else None

            held[name] = wait_for(f"the {name}'s purge", empty)
            self.say(
                f"  the {name} held {shop.held[name]:,} records of the shop a moment ago; "
                "now none, and nothing derived from one"
            )
        for purpose, key in (
            ("replenishment", self.parties.replenisher_key),
            ("credit-assessment", self.parties.lender_key),
        ):
            response = self.http.get(
                f"{self.parties.hub}/v1/shops/{shop.id}/sales",
                params={"purpose": purpose},
                headers={"Authorization": f"Bearer {key}"},
            )
            code = response.json().get("error") if response.is_error else "allowed"
            self.say(f"  a {purpose} read now: {response.status_code} {code}")
            if not response.is_error:
                raise StepFailed(f"the {purpose} read was still allowed after the revocation")
        return held

    def walk(self) -> Shop:
        """Every step in order, each under its heading."""
        self.say("== request")
        shop = self.choose_shop()
        self.request(shop)
        self.say("== approve")
        self.approve(shop)
        self.say("== read and forecast")
        self.forecast(shop)
        self.offer(shop)
        self.say("== order")
        # The shopkeeper may change quantities before accepting: one case less of the first.
        first = shop.proposals["purchase-order"]["content"]["lines"][0]
        cases = first["quantity"] // first["case_pack"]
        placed = self.order(shop, take=cases - 1 if cases > 1 else None)
        if "credit-offer" in shop.proposals:
            self.take_credit(shop)
        self.say("== deliver")
        self.deliver(shop, placed["order_id"])
        self.say("== revoke")
        self.revoke(shop)
        self.say("== purge")
        self.purged(shop)
        return shop
