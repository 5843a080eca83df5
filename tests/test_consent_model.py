"""A stateful property test: random sequences of requests, grants, approvals,
refusals, pauses, revocations, expiries and reads, for two purposes, with data
ranges that do or do not hold the shop's records. A read is answered if and
only if some consent allowed it at that moment, by a model of the rules written
here independently of the hub, and then holds records exactly when that
consent's range does; every listed status matches the model's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import update

from cornerstore.models.consent import Consent
from hub.runtime import Hub
from tests.factories import Actor, World, rfc3339, sale

CATEGORIES = ("sales", "inventory")
PURPOSES = ("replenishment", "analytics")


@dataclass
class _Model:
    """One consent as the model sees it."""

    number: int
    consumer: int
    purpose: str
    categories: frozenset[str]
    mode: str
    limit: int | None
    #: Whether its data range holds the shop's records (they are a day old);
    #: a read under one that does not is allowed and answers no records.
    covers: bool
    status: str
    expired: bool = False
    paused_by_shop: bool = False
    uses_today: int = 0

    def allows(self, consumer: int, purpose: str, category: str) -> bool:
        return (
            self.consumer == consumer
            and self.purpose == purpose
            and self.status == "active"
            and not self.expired
            and category in self.categories
            and self.mode == "rows"
            and (self.limit is None or self.uses_today < self.limit)
        )


class Consents(RuleBasedStateMachine):
    """The hub's consents for one shop and two consumers, beside the model of them.

    Hypothesis makes one per example; the test binds it to its world and hub.
    """

    consents = Bundle("consents")
    requests = Bundle("requests")

    def __init__(self, world: World, hub: Hub, recent: datetime) -> None:
        super().__init__()
        self.hub = hub
        self.recent = recent
        self.shop = world.shop()
        world.ingest(self.shop, "sales", [sale(1, at=recent)])
        world.ingest(
            self.shop, "inventory", [{"sku": "A", "on_hand": 1, "counted_at": rfc3339(recent)}]
        )
        self.consumers: list[Actor] = [world.consumer(), world.consumer()]
        self.model: dict[str, _Model] = {}

    def _terms(
        self,
        purpose: str,
        categories: frozenset[str],
        mode: str,
        limit: int | None,
        covers: bool = True,
    ) -> dict[str, Any]:
        terms: dict[str, Any] = {
            "purpose": purpose,
            "categories": sorted(categories),
            "access_mode": mode,
            "max_reads_per_day": limit,
            "expires_at": rfc3339(datetime.now(UTC) + timedelta(days=30)),
        }
        if not covers:  # An hour of data that holds none of the shop's records.
            terms["data_range"] = {
                "from": rfc3339(self.recent + timedelta(hours=1)),
                "until": rfc3339(self.recent + timedelta(hours=2)),
            }
        return terms

    def _add(self, consent_id: str, consumer: int, status: str, **terms: Any) -> str:
        self.model[consent_id] = _Model(
            number=len(self.model), consumer=consumer, status=status, **terms
        )
        if status == "active":
            self._supersede(consent_id)
        return consent_id

    def _supersede(self, newest: str) -> None:
        """One live consent per consumer and purpose: the newest replaces the others."""
        new = self.model[newest]
        for consent_id, other in self.model.items():
            if (
                consent_id != newest
                and (other.consumer, other.purpose) == (new.consumer, new.purpose)
                and other.status in ("active", "paused")
                and not other.expired
            ):
                other.status = "superseded"

    @rule(
        target=consents,
        consumer=st.integers(0, 1),
        purpose=st.sampled_from(PURPOSES),
        categories=st.frozensets(st.sampled_from(CATEGORIES), min_size=1),
        mode=st.sampled_from(["rows", "rows", "aggregate-only"]),
        limit=st.none() | st.integers(1, 2),
        covers=st.sampled_from([True, True, False]),
    )
    def grant(
        self,
        consumer: int,
        purpose: str,
        categories: frozenset[str],
        mode: str,
        limit: int | None,
        covers: bool,
    ) -> str:
        response = self.shop.keeper.post(
            f"/v1/shops/{self.shop.id}/consents",
            {
                "consumer_id": self.consumers[consumer].id,
                **self._terms(purpose, categories, mode, limit, covers),
            },
        )
        assert response.status_code == 201, response.text
        return self._add(
            response.json()["id"],
            consumer,
            "active",
            purpose=purpose,
            categories=categories,
            mode=mode,
            limit=limit,
            covers=covers,
        )

    @rule(
        target=requests,
        consumer=st.integers(0, 1),
        categories=st.frozensets(st.sampled_from(CATEGORIES), min_size=1),
        limit=st.none() | st.integers(1, 2),
    )
    def request(self, consumer: int, categories: frozenset[str], limit: int | None) -> str:
        response = self.consumers[consumer].post(
            f"/v1/shops/{self.shop.id}/consent-requests",
            self._terms("replenishment", categories, "rows", limit),
        )
        assert response.status_code == 201, response.text
        return self._add(
            response.json()["id"],
            consumer,
            "requested",
            purpose="replenishment",
            categories=categories,
            mode="rows",
            limit=limit,
            covers=True,
        )

    @rule(target=consents, request=consumes(requests), narrow=st.booleans())
    def approve(self, request: str, narrow: bool) -> str:
        model = self.model[request]
        body = {"categories": [min(model.categories)]} if narrow else None
        response = self.shop.keeper.post(
            f"/v1/shops/{self.shop.id}/consent-requests/{request}/approve", body
        )
        assert response.status_code == 200, response.text
        model.status = "active"
        if narrow:
            model.categories = frozenset([min(model.categories)])
        self._supersede(request)
        return request

    @rule(request=consumes(requests))
    def refuse(self, request: str) -> None:
        response = self.shop.keeper.post(
            f"/v1/shops/{self.shop.id}/consent-requests/{request}/refuse"
        )
        assert response.status_code == 200, response.text
        self.model[request].status = "refused"

    def _change(self, consent: str, what: str, allowed: bool) -> bool:
        response = self.shop.keeper.post(f"/v1/shops/{self.shop.id}/consents/{consent}/{what}")
        assert response.status_code == (200 if allowed else 409), response.text
        return allowed

    @rule(consent=consents)
    def pause(self, consent: str) -> None:
        model = self.model[consent]
        if self._change(consent, "pause", model.status == "active" and not model.expired):
            model.status, model.paused_by_shop = "paused", False

    @rule(consent=consents)
    def resume(self, consent: str) -> None:
        model = self.model[consent]
        if self._change(consent, "resume", model.status == "paused" and not model.expired):
            model.status, model.paused_by_shop = "active", False

    @rule(consent=consents)
    def revoke(self, consent: str) -> None:
        model = self.model[consent]
        if self._change(consent, "revoke", model.status in ("active", "paused")):
            model.status = "revoked"

    @rule()
    def pause_sharing(self) -> None:
        response = self.shop.keeper.post(f"/v1/shops/{self.shop.id}/pause-sharing")
        assert response.status_code == 200, response.text
        for model in self.model.values():
            if model.status == "active" and not model.expired:
                model.status, model.paused_by_shop = "paused", True

    @rule()
    def resume_sharing(self) -> None:
        response = self.shop.keeper.post(f"/v1/shops/{self.shop.id}/resume-sharing")
        assert response.status_code == 200, response.text
        for model in self.model.values():
            if model.status == "paused" and model.paused_by_shop and not model.expired:
                model.status, model.paused_by_shop = "active", False

    @rule(consent=consents)
    def expire(self, consent: str) -> None:
        """Time passes for this consent: its validity ends now."""
        with self.hub.sessions() as session:
            session.execute(
                update(Consent)
                .where(Consent.id == uuid.UUID(consent))
                .values(expires_at=datetime.now(UTC) - timedelta(microseconds=1))
            )
            session.commit()
        self.model[consent].expired = True

    @rule(
        consumer=st.integers(0, 1),
        purpose=st.sampled_from(PURPOSES),
        category=st.sampled_from(CATEGORIES),
    )
    def read(self, consumer: int, purpose: str, category: str) -> None:
        allowing = sorted(
            (m for m in self.model.values() if m.allows(consumer, purpose, category)),
            key=lambda m: m.number,
        )
        response = self.consumers[consumer].get(
            f"/v1/shops/{self.shop.id}/{category}", purpose=purpose
        )
        if allowing:
            # The oldest consent that allows the read is the one it is under:
            # it answers exactly the records inside that consent's data range.
            assert response.status_code == 200, response.text
            assert bool(response.json()["records"]) == allowing[0].covers, response.text
            allowing[0].uses_today += 1
        else:
            assert response.status_code == 404, response.text

    @invariant()
    def statuses_match(self) -> None:
        listed = self.shop.keeper.get(f"/v1/shops/{self.shop.id}/consents").json()["consents"]
        seen = {c["id"]: c["status"] for c in listed}
        expected = {
            cid: ("expired" if m.expired and m.status in ("active", "paused") else m.status)
            for cid, m in self.model.items()
        }
        assert seen == expected


def test_a_read_returns_data_exactly_when_a_consent_allows_it(world: World, hub: Hub) -> None:
    recent = datetime.now(UTC) - timedelta(days=1)

    class ConsentsHere(Consents):
        def __init__(self) -> None:
            super().__init__(world, hub, recent)

    run_state_machine_as_test(
        ConsentsHere,
        settings=settings(
            max_examples=15,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
