"""The access gate: the one code path every read of shop data takes.

Its steps, numbered in the code below as they are here:

1. authenticate: the API key becomes a :class:`Caller` (``cornerstore.deps``);
2. authorize: the purpose is settled and Casbin decides (:class:`AuthorizeRead`,
   declared in the read endpoint's signature; an export's permit is declared
   likewise);
3. consent: a consent of the shop allows this consumer, purpose, category and
   window now, and its use is counted (:meth:`AccessGate.read`);
4. decrypt, with the shop's data keys;
5. minimise to the fields the purpose may see;
6. audit: the entry is committed before anything leaves;
7. respond.

It fails closed: a refusal, or any error along the way, lets no data out. A
refused read answers 404, exactly like a shop that does not exist, and is
audited with its reason.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import Query
from opentelemetry import trace
from opentelemetry.trace import Span
from sqlalchemy.orm import Session

from cornerstore.access import Permit, authorize, record_refusal
from cornerstore.authz import OWNER_PURPOSE, Action, PurposeName, Relation
from cornerstore.categories import CATEGORIES, Category
from cornerstore.crypto import ShopCipher
from cornerstore.db import utcnow
from cornerstore.deps import CoreDep, CurrentCaller
from cornerstore.errors import (
    FieldError,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    ValidationFailed,
)
from cornerstore.identity import Caller
from cornerstore.keys.ring import KeyRing
from cornerstore.models.principals import Role
from cornerstore.ports import Allowance, AuditDraft, ConsentRefused, Core
from cornerstore.records import repository
from cornerstore.records.codec import (
    QUARANTINE_KIND,
    RAW_FIELD,
    format_time,
    quarantine_record_key,
)
from cornerstore.records.cursor import decode_cursor, encode_cursor
from cornerstore.records.decrypt import open_rows

_log = logging.getLogger(__name__)
_tracer = trace.get_tracer("cornerstore.gate")

#: Derived fields a purpose may ask for instead of the raw value they come from.
PSEUDONYMS = {"payer_pseudonym": "payer_ref"}


@dataclass(frozen=True, slots=True)
class ReadWindow:
    """Which records of the permitted shop and category a read asks for."""

    since: datetime | None
    until: datetime | None
    cursor: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class Page:
    records: list[dict[str, Any]]
    next: str | None


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def audited_purpose(permit: Permit) -> str | None:
    """The purpose the audit log records: the declared one, or ``owner`` for the shop's own."""
    if permit.relation is Relation.own:
        return OWNER_PURPOSE
    return permit.purpose.value if permit.purpose else None


class AuthorizeRead:
    """Steps 1 and 2 for a read of ``category``, as a dependency of the read endpoint."""

    def __init__(self, category: Category) -> None:
        self.category = category

    def __call__(
        self,
        shop_id: uuid.UUID,
        core: CoreDep,
        caller: CurrentCaller,
        purpose: Annotated[
            PurposeName | None,
            Query(description="Why the data is read. The shop's own shopkeeper may omit it."),
        ] = None,
    ) -> Permit:
        # 1) The caller was authenticated by the CurrentCaller dependency.
        # 2) The purpose the read is decided under, then Casbin. Casbin's
        #    refusals are audited and raised inside authorize().
        if shop_id in caller.shop_ids:
            purpose = None  # The shop reading its own data needs no purpose, whatever it said.
        elif purpose is None and caller.role == Role.consumer:
            _refuse(core, caller, shop_id, self.category, None, "no_purpose")
            raise ValidationFailed(
                "declare the purpose of this read",
                [FieldError(field="query.purpose", reason="required for this caller")],
            )
        # Any other role naming no purpose is refused by Casbin: audited, 404.
        return authorize(
            core,
            caller,
            resource=self.category,
            action=Action.read,
            shop_id=shop_id,
            purpose=purpose,
        )


class AccessGate:
    def __init__(self, core: Core) -> None:
        self._core = core

    def read(self, session: Session, permit: Permit, window: ReadWindow) -> Page:
        """Steps 3 to 7 of a read that :class:`AuthorizeRead` permitted."""
        after = decode_cursor(window.cursor)
        with _span("gate.read") as span:
            span.set_attribute("cornerstore.category", permit.category.value)
            span.set_attribute("cornerstore.purpose", audited_purpose(permit) or "")
            try:
                # 3) Consent, counted as used.
                allowance = self._check_consent(session, permit, window)
                # 4) and 5) Fetch, decrypt and minimise.
                page, fields = self._fetch(session, permit, window, after, allowance)
            except (_Refused, ConsentRefused) as refused:
                _refuse_read(self._core, permit, refused.reason)
                raise NotFound() from None
            except Exception as exc:
                # Fail closed. Only the exception type is logged: its message
                # could carry shop data.
                _log.error("gate error on a read of shop %s: %s", permit.shop, type(exc).__name__)
                _refuse_read(self._core, permit, "gate_error", best_effort=True)
                raise ServiceUnavailable() from None
            # 6) Audit, committed before the page leaves.
            consent_id = allowance.consent_id if allowance else None
            self._record_allowed(permit, consent_id, len(page.records), fields)
            span.set_attribute("cornerstore.records", len(page.records))
            # 7) Respond.
            return page

    def export(self, session: Session, permit: Permit) -> ShopExport:
        """Open the shop's own data for export (data portability), all fields, audited first.

        Only the shop's shopkeeper is permitted (Casbin's ``shop``/``export``);
        the shop reads its own data, so no consent is needed and nothing is
        cut away. Every data key of the shop is opened first, so that an
        export whose keys are gone (a restored backup of an erased shop, a
        missing key-encryption key) is refused before its first byte rather
        than cut off mid-stream. The audit entry is committed before anything
        is returned; decryption happens as the caller streams the records out
        of the returned :class:`ShopExport`.
        """
        with _span("gate.export"):
            try:
                self._core.keyring.open_every_version(session, permit.shop)
            except Exception as exc:
                _log.error(
                    "export of shop %s withheld, its keys do not open: %s",
                    permit.shop,
                    type(exc).__name__,
                )
                raise ServiceUnavailable() from None
            return self._own_data(
                permit, "export", details={"categories": [c.value for c in Category]}
            )

    def summary(self, session: Session, permit: Permit, since: datetime | None) -> ShopExport:
        """Open the shop's own data for its summary, audited first as the shop's own read.

        Like :meth:`export`, for the shop's shopkeeper only, with no consent
        needed; the records are opened as the summary reads them.
        """
        with _span("gate.summary"):
            return self._own_data(
                permit,
                "read",
                details={
                    "summary": [c.value for c in Category],
                    "since": since.isoformat() if since else None,
                },
            )

    def _own_data(self, permit: Permit, action: str, *, details: dict[str, Any]) -> ShopExport:
        """The shop's own data for its shopkeeper, once the audit entry saying so is durable."""
        draft = AuditDraft.of(
            permit.caller,
            action,
            "owner",
            shop_id=permit.shop,
            purpose=OWNER_PURPOSE,
            policy_version=permit.policy_version,
            details=details,
        )
        try:
            self._core.audit_writer.append(draft)
        except Exception as exc:
            _log.error(
                "audit write failed, %s of shop %s withheld: %s",
                action,
                permit.shop,
                type(exc).__name__,
            )
            raise ServiceUnavailable() from None
        return ShopExport(self._core, permit.shop)

    def _check_consent(
        self, session: Session, permit: Permit, window: ReadWindow
    ) -> Allowance | None:
        """The consent that allows this read, counted as used; None for the shop's own reads."""
        if permit.relation is Relation.own:
            return None  # The shop reading its own data needs no one's consent.
        if permit.purpose is None:
            # Casbin let a read of another shop through with no purpose: the
            # policy is wrong, and nothing goes out.
            raise _Refused("no_purpose")
        with _span("gate.consent") as span:
            now = utcnow()
            try:
                allowance = self._core.consent_check.check(
                    session,
                    shop_id=permit.shop,
                    consumer_id=permit.caller.id,
                    purpose=permit.purpose.value,
                    category=permit.category.value,
                    since=window.since,
                    until=window.until,
                    now=now,
                )
                self._core.consent_check.count(allowance, now)
            except ConsentRefused as refused:
                span.set_attribute("cornerstore.consent", refused.reason)
                raise
            span.set_attribute("cornerstore.consent", "found")
        return allowance

    def _fetch(
        self,
        session: Session,
        permit: Permit,
        window: ReadWindow,
        after: tuple[datetime, int] | None,
        allowance: Allowance | None,
    ) -> tuple[Page, tuple[str, ...]]:
        shop_id, category = permit.shop, permit.category
        fields = self._allowed_fields(permit, category)
        # Under a consent, only the part of the asked window inside its data range.
        since, until = (
            (allowance.since, allowance.until) if allowance else (window.since, window.until)
        )
        with _span("gate.fetch"):
            rows = repository.read_window(
                session,
                repository.Window(shop_id, category, since, until, after, window.limit + 1),
            )
        more = len(rows) > window.limit
        rows = rows[: window.limit]
        records: list[dict[str, Any]] = []
        if rows:
            keyring = self._core.keyring
            current = keyring.cipher(session, shop_id)
            pseudonym_scope = str(permit.caller.id)
            with _span("gate.decrypt_minimise"):
                for values in open_rows(keyring, session, shop_id, category, rows):
                    records.append(minimise(values, fields, current, pseudonym_scope))
        next_cursor = encode_cursor(rows[-1][1], rows[-1][0]) if more else None
        return Page(records, next_cursor), fields

    def _allowed_fields(self, permit: Permit, category: Category) -> tuple[str, ...]:
        if permit.relation is Relation.own:
            return CATEGORIES[category].fields  # The shop sees all of its own data.
        purpose = self._core.authorizer.purposes.get(permit.purpose) if permit.purpose else None
        fields = purpose.fields.get(category) if purpose else None
        if not fields:
            # Casbin allowed a pair the purpose catalogue does not describe:
            # the policy files disagree, so nothing goes out.
            raise _Refused("no_fields_for_purpose")
        return fields

    def _record_allowed(
        self,
        permit: Permit,
        consent_id: uuid.UUID | None,
        count: int,
        fields: tuple[str, ...],
    ) -> None:
        draft = AuditDraft.of(
            permit.caller,
            "read",
            "owner" if consent_id is None else "consent",
            shop_id=permit.shop,
            category=permit.resource.value,
            purpose=audited_purpose(permit),
            policy_version=permit.policy_version,
            details={
                "records": count,
                "consent_id": str(consent_id) if consent_id else None,
                "fields": list(fields),
            },
        )
        try:
            with _span("gate.audit"):
                self._core.audit_writer.append(draft)
        except Exception as exc:
            # No audit record, no data.
            _log.error(
                "audit write failed, read of shop %s withheld: %s",
                permit.shop_id,
                type(exc).__name__,
            )
            raise ServiceUnavailable() from None


def _refuse_read(core: Core, permit: Permit, reason: str, *, best_effort: bool = False) -> None:
    _refuse(
        core,
        permit.caller,
        permit.shop,
        permit.category,
        audited_purpose(permit),
        reason,
        best_effort=best_effort,
    )


def _refuse(
    core: Core,
    caller: Caller,
    shop_id: uuid.UUID,
    category: Category,
    purpose: str | None,
    reason: str,
    *,
    best_effort: bool = False,
) -> None:
    """Audit a refused read; without its record the refusal itself is a 503."""
    try:
        record_refusal(
            core,
            caller,
            action="read",
            shop_id=shop_id,
            reason=reason,
            category=category.value,
            purpose=purpose,
        )
    except TooManyRequests:
        if not best_effort:
            raise  # Recorded; the principal has been refused too often of late.
    except Exception as exc:
        if not best_effort:
            raise ServiceUnavailable() from None
        _log.error("could not audit a refused read of shop %s: %s", shop_id, type(exc).__name__)


def open_for_rollup(
    keyring: KeyRing,
    session: Session,
    shop_id: uuid.UUID,
    category: Category,
    since: datetime,
    until: datetime,
    *,
    page_size: int = 5000,
) -> list[dict[str, Any]]:
    """One shop's records of [since, until), opened to be added up into analytics rollups.

    Not a release: what is opened here leaves the hub only as noisy sums
    across shops, and each answer that counts it is audited with the shops
    it counted (``analytics.service``).
    """
    opened: list[dict[str, Any]] = []
    after = None
    while True:
        window = repository.Window(shop_id, category, since, until, after, page_size)
        rows = repository.read_window(session, window)
        opened.extend(open_rows(keyring, session, shop_id, category, rows))
        if len(rows) < page_size:
            return opened
        after = (rows[-1][1], rows[-1][0])


class ShopExport:
    """A permitted export: iterates one shop's decrypted records, page by page.

    Memory stays bounded by the page size whatever the shop holds.
    """

    def __init__(self, core: Core, shop_id: uuid.UUID, *, page_size: int = 1000) -> None:
        self._core = core
        self.shop_id = shop_id
        self._page_size = page_size

    def records(
        self,
        session: Session,
        category: Category,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The category's records, in time order; of [since, until) when given."""
        after = None
        while True:
            rows = repository.read_window(
                session,
                repository.Window(self.shop_id, category, since, until, after, self._page_size),
            )
            yield from open_rows(self._core.keyring, session, self.shop_id, category, rows)
            if len(rows) < self._page_size:
                return
            after = (rows[-1][1], rows[-1][0])

    def quarantined(self, session: Session) -> Iterator[dict[str, Any]]:
        """Records that were refused at ingestion, as they arrived, with the reason."""
        keyring, after = self._core.keyring, 0
        while True:
            rows = repository.read_quarantine(session, self.shop_id, after, self._page_size)
            for row in rows:
                raw = open_quarantined(keyring, session, row)
                yield {
                    "category": row.category,
                    "batch_id": str(row.batch_id),
                    "position": row.position,
                    "field": row.field,
                    "reason": row.reason,
                    "received_at": format_time(row.received_at),
                    "record": raw.decode(),
                }
            if len(rows) < self._page_size:
                return
            after = rows[-1].id


class SealedRefusal(Protocol):
    """A refused record as the repository keeps it: sealed, where and when it arrived."""

    @property
    def shop_id(self) -> uuid.UUID: ...
    @property
    def key_version(self) -> int: ...
    @property
    def batch_id(self) -> uuid.UUID: ...
    @property
    def position(self) -> int: ...
    @property
    def sealed(self) -> bytes: ...


def open_quarantined(keyring: KeyRing, session: Session, row: SealedRefusal) -> bytes:
    """What arrived of a refused record (its JSON), for the shop's own principals alone."""
    cipher = keyring.cipher(session, row.shop_id, row.key_version)
    return cipher.open(
        QUARANTINE_KIND,
        RAW_FIELD,
        quarantine_record_key(row.batch_id, row.position),
        bytes(row.sealed),
    )


def _span(name: str) -> AbstractContextManager[Span]:
    """A gate span that never records an exception's message: it could hold shop data."""
    return _tracer.start_as_current_span(
        name, record_exception=False, set_status_on_exception=False
    )


def minimise(
    values: dict[str, Any], fields: tuple[str, ...], cipher: ShopCipher, pseudonym_scope: str
) -> dict[str, Any]:
    """Step 5: keep only ``fields``, deriving pseudonyms where a purpose asks for one."""
    out: dict[str, Any] = {}
    for name in fields:
        source = PSEUDONYMS.get(name)
        if source is None:
            out[name] = values.get(name)
        elif values.get(source) is not None:
            out[name] = cipher.pseudonym(pseudonym_scope, str(values[source]))
        else:
            out[name] = None
    return out
