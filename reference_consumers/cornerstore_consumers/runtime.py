"""What every consumer process has: its client, its local store, its inbox, and a worker.

A consumer registers its webhook URL with the hub when it starts (which
hands it a fresh secret), and answers each delivery in milliseconds: it
checks the signature, acts at once on what must not wait (a revocation or an
erasure purges the local store before the answer is sent: the SDK's
``LocalStore.receive``, and what was derived from it is dropped), and keeps
the event in its inbox. One worker thread then handles the events one at a
time, in the order they came; one that fails waits and is tried again (a
later event does not wait behind it). An ended consent or shop is
remembered, so nothing is kept under it again, whatever the order. The same
thread purges, at least hourly, what has outlived its data life.

Logs name events by type and id only: never a shop's values, a key or a secret.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, get_args

from cornerstore_client import (
    BadRequest,
    Client,
    Conflict,
    Consent,
    ConsentEnded,
    ConsentRequest,
    CornerstoreError,
    Forbidden,
    LocalStore,
    NotFound,
    Proposal,
    ValidationFailed,
    ended_by,
)
from cornerstore_client.models import Category
from cornerstore_consumers.database import Database
from cornerstore_consumers.derived import SCHEMA as DERIVED_SCHEMA
from cornerstore_consumers.derived import Derived
from cornerstore_consumers.inbox import SCHEMA as INBOX_SCHEMA
from cornerstore_consumers.inbox import Inbox

_log = logging.getLogger(__name__)

#: Where the hub POSTs events, under the consumer's own base URL.
WEBHOOK_PATH = "/webhooks/cornerstore"
#: The hub's answers that no retry changes.
FINAL = (NotFound, Conflict, Forbidden, ValidationFailed, BadRequest)
#: How long a handled event's id is remembered (the hub retries for hours at most).
INBOX_DAYS = 7
#: How often expired records are purged, at the least.
PURGE_SECONDS = 3600.0


#: The changes after which a consent allows reads again.
STARTS = frozenset({"approved", "granted", "resumed"})


@dataclass(frozen=True)
class Terms:
    """What a consumer asks every shop for."""

    purpose: str
    categories: list[Category]
    #: How long it keeps what it reads (ISO 8601), within the purpose's limit.
    data_life: str
    #: How long the consent lasts unless the shopkeeper ends it sooner.
    lasts: timedelta


class Handler(Protocol):
    """A consumer's own logic. Each returns what came of it, in words without shop values.

    The runtime calls them from its worker, one event at a time. Events that
    end a consent never reach a handler: the runtime purges the records and
    drops what was derived from them (:mod:`cornerstore_consumers.derived`).
    """

    def on_consent(self, consent: Consent, key: str) -> str:
        """A consent (still) allows reads: read, and propose what the shop gets back.

        ``key`` names this piece of work for good (the event's id): propose
        with it as the ``Idempotency-Key``, and a retry asks the shop once.
        """
        ...

    def on_answer(self, proposal: Proposal) -> str:
        """The shopkeeper answered one of this consumer's proposals."""
        ...

    def shop(self, shop_id: str) -> dict[str, Any]:
        """What this consumer holds of a shop: records kept, what it derived, its contracts."""
        ...

    def close(self) -> None:
        """Let go of what it holds open (its clients of other services)."""
        ...


@dataclass(frozen=True)
class ConsumerSettings:
    hub_url: str
    api_key: str
    #: This process's base URL as the hub reaches it (the webhook is under it).
    public_url: str
    data_dir: Path

    @classmethod
    def from_env(cls, public_url: str, data_dir: Path) -> ConsumerSettings:
        """The hub and the key from ``CORNERSTORE_HUB_URL`` and ``CORNERSTORE_API_KEY``.

        The key is read from the environment, never from the command line,
        where every user of the machine could read it.
        """
        return cls(
            hub_url=os.environ.get("CORNERSTORE_HUB_URL", "http://127.0.0.1:8000"),
            api_key=os.environ["CORNERSTORE_API_KEY"],
            public_url=public_url.rstrip("/"),
            data_dir=data_dir,
        )


class Runtime:
    def __init__(self, settings: ConsumerSettings, terms: Terms, schema: str) -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.terms = terms
        self.client = Client(settings.hub_url, settings.api_key)
        self.store = LocalStore(settings.data_dir / "records.db")
        #: The consumer's own state: its inbox, what it derived, and the tables of ``schema``.
        self.db = Database(settings.data_dir / "state.db", INBOX_SCHEMA + DERIVED_SCHEMA + schema)
        self.inbox = Inbox(self.db)
        self.derived = Derived(self.db)
        self._secret: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None

    def start(self, handler: Handler) -> None:
        """Register the webhook (a new secret each start), purge, and start the worker."""
        self._secret = self.client.register_webhook(self.settings.public_url + WEBHOOK_PATH).secret
        self._worker = threading.Thread(
            target=self._work, args=(handler,), name="consumer-worker", daemon=True
        )
        self._worker.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=30)
            if self._worker.is_alive():
                # Mid-forecast still: it dies with the process; closing under it would
                # only turn its last write into an error. The inbox keeps the event.
                return
        self.client.close()
        self.store.close()
        self.db.close()

    @property
    def working(self) -> bool:
        """Whether the worker runs (health: a consumer whose worker died only piles events up)."""
        return self._worker is not None and self._worker.is_alive()

    def receive(self, headers: Mapping[str, str], body: bytes) -> bool:
        """A delivery: verified (raises ``VerificationError``), acted on, kept; False if seen."""
        if self._secret is None:
            raise RuntimeError("not started: no webhook secret yet")
        event = self.store.receive(headers, body, self._secret)
        ended = ended_by(event)
        if ended is not None:
            self.derived.drop(*ended)  # at once; again in turn, after the work before it
        added = self.inbox.add(event)
        self._wake.set()
        return added

    def ask(self, shop_id: str) -> Consent:
        """Ask the shop for consent on this consumer's terms; a webhook tells the answer."""
        return self.client.request_consent(
            shop_id,
            ConsentRequest(
                purpose=self.terms.purpose,
                categories=self.terms.categories,
                expires_at=datetime.now(UTC) + self.terms.lasts,
                data_life=self.terms.data_life,
            ),
        )

    def live_consent(
        self, *, consent_id: str | None = None, shop_id: str | None = None
    ) -> Consent | None:
        """The consent (by id, or the shop's) that allows this consumer's reads now, if any.

        Asked of the hub each time: events can come out of order, the hub's
        answer is the state as it is.
        """
        for consent in self.client.consents():
            if consent.status != "active" or consent.purpose != self.terms.purpose:
                continue
            if str(consent.id) == consent_id or str(consent.shop_id) == shop_id:
                return consent
        return None

    def kept(self, shop_id: str) -> dict[str, int]:
        """How many of a shop's records the local store holds, per category."""
        # The SDK's own list of categories: a new one is counted without a change here.
        return {category: self.store.count(shop_id, category) for category in get_args(Category)}

    def _work(self, handler: Handler) -> None:
        purged_at = -PURGE_SECONDS  # the first purge at once
        while not self._stopping.is_set():
            try:
                if time.monotonic() - purged_at >= PURGE_SECONDS:
                    self._purge()
                    purged_at = time.monotonic()
                event = self.inbox.next()
                if event is None:
                    self._wake.wait(timeout=1.0)
                    self._wake.clear()
                    continue
                self._handle(handler, event)
            except Exception as exc:  # its own database failed: wait, and go on
                _log.warning("the worker's round failed (%s); again in 5 s", type(exc).__name__)
                self._stopping.wait(5.0)

    def _purge(self) -> None:
        records = self.store.purge_expired()
        derived = self.derived.purge_expired()
        handled = self.inbox.forget_handled(before=time.time() - INBOX_DAYS * 86_400)
        _log.info(
            "purged %d expired records, %d derived rows and %d handled events",
            records,
            derived,
            handled,
        )

    def _outcome(self, handler: Handler, event: dict[str, Any]) -> str:
        ended = ended_by(event)
        if ended is not None:
            records = self.store.on_event(event)
            dropped = self.derived.drop(*ended)
            return f"{ended[0]} ended: {records} records purged, {dropped} derived rows dropped"
        if event["type"] == "proposal.answered":
            return handler.on_answer(self.client.proposal(str(event["proposal_id"])))
        if event["type"] == "consent.status_changed" and event.get("change") in STARTS:
            consent = self.live_consent(consent_id=str(event["consent_id"]))
            if consent is None:
                return "the consent no longer allows reads"
            return handler.on_consent(consent, str(event["event_id"]))
        return "nothing to do"

    def _handle(self, handler: Handler, event: dict[str, Any]) -> None:
        event_id, kind = str(event["event_id"]), str(event["type"])
        try:
            outcome = self._outcome(handler, event)
        except FINAL as exc:
            # The hub said no for good (the consent ended, the proposal was
            # answered, the request is wrong): asking again changes nothing.
            outcome = f"refused by the hub: {exc.code}"
        except ConsentEnded:
            outcome = "the consent ended meanwhile: nothing kept"
        except Exception as exc:
            # Anything else may pass: the hub busy (429, 5xx) or our key just
            # rotated (401), a service down. The type only in the log: a
            # message or a traceback could quote a shop's values.
            asked = exc.retry_after if isinstance(exc, CornerstoreError) else None
            self.inbox.failed(event_id, type(exc).__name__, at_least=asked)
            _log.warning("event %s (%s) failed: %s; will retry", event_id, kind, type(exc).__name__)
            return
        self.inbox.done(event_id, outcome)
        _log.info("event %s (%s): %s", event_id, kind, outcome)
