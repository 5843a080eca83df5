"""The lender's work: ask, assess when allowed, offer a line with its reasons, open it if taken.

    consent approved  → read payments and sales, score, offer a credit line
                        whose every reason is in plain words (en and zh)
    proposal answered → accepted: open the line; declined: note it
    consent ended     → the runtime purges the records and drops the assessment

A shop whose takings earn no line is told nothing it did not ask for: the
assessment, with its reasons, is kept for the lender's status page only, and
goes with the records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cornerstore_client import Consent, CreditOffer, Proposal, Reason
from cornerstore_consumers.lender.assessor import PURPOSE, assess
from cornerstore_consumers.lender.credit_lines import CreditLines
from cornerstore_consumers.runtime import Runtime, Terms

TERMS = Terms(
    purpose=PURPOSE,
    categories=["sales", "payments"],
    # Long enough to review an answer and the month after it.
    data_life="P30D",
    # The longest a credit-assessment consent may last (policies/purposes.toml).
    lasts=timedelta(days=180),
)
#: What its derived rows are called (:mod:`cornerstore_consumers.derived`).
ASSESSMENT = "assessment"


class Lender:
    def __init__(
        self, runtime: Runtime, *, today: Callable[[], date] = lambda: datetime.now(UTC).date()
    ) -> None:
        self.runtime = runtime
        self.lines = CreditLines(runtime.db)
        self._today = today

    def on_consent(self, consent: Consent, key: str) -> str:
        return self.assess(consent, key)

    def on_answer(self, proposal: Proposal) -> str:
        return self.open_line(proposal)

    def assess(self, consent: Consent, key: str) -> str:
        """Score the shop under ``consent``; offer the line it earns, if any, once for ``key``."""
        card, offer = assess(self.runtime.client, self.runtime.store, consent, today=self._today())
        reasons = [Reason(code=r.code, en=r.en, zh=r.zh) for r in offer.reasons]
        body = {
            "scorecard": dataclasses.asdict(card),
            "line_cents": offer.line_cents,
            "annual_rate": offer.annual_rate,
            "reasons": [r.model_dump() for r in reasons],
        }
        if not offer.offered:
            self.runtime.derived.keep(key, consent, ASSESSMENT, body, "no offer")
            return "assessed: no line to offer"
        proposal = self.runtime.client.propose(
            consent.shop_id,
            CreditOffer(
                line_cents=offer.line_cents, annual_rate=offer.annual_rate, reasons=reasons
            ),
        )
        self.runtime.derived.keep(str(proposal.id), consent, ASSESSMENT, body, "pending")
        return f"offered a credit line with {len(reasons)} reasons"

    def open_line(self, proposal: Proposal) -> str:
        """Open the line the shopkeeper took; note a refusal."""
        proposal_id = str(proposal.id)
        self.runtime.derived.set_status(proposal_id, proposal.status)
        if proposal.status != "accepted":
            return f"the shopkeeper {proposal.status} it"
        content = proposal.content
        self.lines.open(
            proposal_id,
            str(proposal.shop_id),
            int(content["line_cents"]),
            float(content["annual_rate"]),
        )
        return "credit line opened"

    def close(self) -> None:
        pass  # nothing of its own held open

    def shop(self, shop_id: str) -> dict[str, Any]:
        key = shop_id
        return {
            "shop_id": key,
            "records_kept": self.runtime.kept(key),
            "assessments": self.runtime.derived.of_shop(key),
            "credit_lines": self.lines.of_shop(key),
        }
