"""One shop's credit assessment: read payments and sales through the hub, score, offer.

The lender sees what ``credit-assessment`` allows: amounts, times, methods,
and payers only as its own pseudonyms, never the shop's payer references.
What it reads is kept under the consent's data life in its local store.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from cornerstore_client import Client, Consent, LocalStore
from cornerstore_consumers.lender.offer import Offer, offer
from cornerstore_consumers.lender.scorecard import Scorecard, score

PURPOSE = "credit-assessment"
#: The months the scorecard looks back over.
ASSESSED_DAYS = 182


def assess(
    client: Client, store: LocalStore, consent: Consent, *, today: date
) -> tuple[Scorecard, Offer]:
    """The scorecard over the last 26 whole weeks before ``today``, and the offer it earns."""
    shop_id = str(consent.shop_id)
    first = today - timedelta(days=ASSESSED_DAYS)
    window = {
        "purpose": PURPOSE,
        "since": datetime.combine(first, time(), UTC),
        "until": datetime.combine(today, time(), UTC),
    }
    payments = list(client.payments(shop_id, **window))
    sales = list(client.sales(shop_id, **window))
    store.keep(consent, "payments", payments)
    store.keep(consent, "sales", sales)
    # A shop that began taking payments lately is judged from its first, not from empty months.
    began = min((_day(p["occurred_at"]) for p in payments), default=first)
    card = score(payments, sales, first_day=max(first, began), last_day=today - timedelta(days=1))
    return card, offer(card)


def _day(moment: object) -> date:
    return date.fromisoformat(str(moment)[:10])
