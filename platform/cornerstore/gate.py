"""The access gate: the one code path every read of shop data takes.

    authenticate -> Casbin decision -> consent -> decrypt -> minimise -> audit -> respond

Authentication happens in the endpoint's dependencies (:mod:`cornerstore.deps`);
everything after it happens in :meth:`AccessGate.read`. It fails closed: a
refusal, or any error along the way, lets no data out, and an allowed read's
audit entry is committed before the data is returned. A refused read answers
404, exactly like a shop that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span
from sqlalchemy.orm import Session

from cornerstore.access import NO_PURPOSE, Permit, authorize, record_refusal
from cornerstore.authz import OWN, OWNER_PURPOSE
from cornerstore.crypto import ShopCipher, sealed_key_version
from cornerstore.db import utcnow
from cornerstore.errors import (
    FieldError,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from cornerstore.identity import Caller
from cornerstore.models.principals import Role
from cornerstore.models.records import Category
from cornerstore.ports import Allowance, AuditDraft, ConsentRefused, Core, Decision
from cornerstore.records import repository
from cornerstore.records.codec import (
    FIELDS,
    QUARANTINE_KIND,
    RAW_FIELD,
    VALUES_FIELD,
    decode_values,
    format_time,
    quarantine_record_key,
)

_log = logging.getLogger(__name__)
_tracer = trace.get_tracer("cornerstore.gate")

#: Derived fields a purpose may ask for instead of the raw value they come from.
PSEUDONYMS = {"payer_pseudonym": "payer_ref"}


@dataclass(frozen=True, slots=True)
class ReadRequest:
    shop_id: uuid.UUID
    category: Category
    purpose: str | None
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


class AccessGate:
    def __init__(self, hub: Core) -> None:
        self._hub = hub

    def read(self, session: Session, caller: Caller, request: ReadRequest) -> Page:
        after = decode_cursor(request.cursor)
        with _span("gate.read") as span:
            purpose = self._purpose(session, caller, request)
            span.set_attribute("cornerstore.category", request.category.value)
            span.set_attribute("cornerstore.purpose", purpose)
            # Casbin refusals are audited and raised inside authorize().
            permit = authorize(
                self._hub,
                session,
                caller,
                resource=request.category.value,
                action="read",
                shop_id=request.shop_id,
                purpose=purpose,
            )
            try:
                allowance = self._check_consent(session, permit, request)
                page, fields = self._fetch(session, permit, request, after, allowance)
            except (_Refused, ConsentRefused) as refused:
                self._refuse(session, caller, request, purpose, refused.reason)
                raise NotFound() from None
            except Exception as exc:
                # Fail closed. Only the exception type is logged: its message
                # could carry shop data.
                _log.error(
                    "gate error on a read of shop %s: %s", request.shop_id, type(exc).__name__
                )
                self._refuse(session, caller, request, purpose, "gate_error", best_effort=True)
                raise ServiceUnavailable() from None
            consent_id = allowance.consent_id if allowance else None
            self._record_allowed(session, permit, request, consent_id, len(page.records), fields)
            span.set_attribute("cornerstore.records", len(page.records))
            return page

    def export(self, session: Session, caller: Caller, shop_id: uuid.UUID) -> ShopExport:
        """Open the shop's own data for export (data portability), all fields, audited first.

        Only the shop's shopkeeper may export (Casbin); the shop reads its own
        data, so no consent is needed and nothing is cut away. The audit entry
        is committed before anything is returned; decryption happens as the
        caller streams the records out of the returned :class:`ShopExport`.
        """
        with _span("gate.export"):
            permit = authorize(
                self._hub, session, caller, resource="shop", action="export", shop_id=shop_id
            )
            draft = AuditDraft(
                action="export",
                decision=Decision.allow,
                reason="owner",
                principal_id=caller.id,
                principal_role=caller.role,
                shop_id=shop_id,
                purpose=OWNER_PURPOSE,
                policy_version=permit.policy_version,
                details={"categories": [c.value for c in Category]},
            )
            try:
                self._hub.audit_writer.append(draft)
            except Exception as exc:
                _log.error(
                    "audit write failed, export of shop %s withheld: %s",
                    shop_id,
                    type(exc).__name__,
                )
                raise ServiceUnavailable() from None
            return ShopExport(self._hub, shop_id)

    def _purpose(self, session: Session, caller: Caller, request: ReadRequest) -> str:
        """The purpose the read is decided and audited under."""
        if request.shop_id in caller.shop_ids:
            return OWNER_PURPOSE  # The shop reading its own data, whatever it declared.
        if request.purpose is not None:
            return request.purpose
        if caller.role == Role.consumer:
            self._refuse(session, caller, request, None, "no_purpose")
            raise ValidationFailed(
                "declare the purpose of this read",
                [FieldError(field="query.purpose", reason="required for this caller")],
            )
        # No purpose lets any other role read another shop: a refusal,
        # audited and answered 404 like every other one.
        return NO_PURPOSE

    def _check_consent(
        self, session: Session, permit: Permit, request: ReadRequest
    ) -> Allowance | None:
        """The consent that allows this read, counted as used; None for the shop's own reads."""
        if permit.relation == OWN:
            return None  # The shop reading its own data needs no one's consent.
        assert permit.shop_id is not None
        with _span("gate.consent") as span:
            now = utcnow()
            try:
                allowance = self._hub.consent_check.check(
                    session,
                    shop_id=permit.shop_id,
                    consumer_id=permit.caller.id,
                    purpose=permit.purpose,
                    category=permit.resource,
                    since=request.since,
                    until=request.until,
                    now=now,
                )
                self._hub.consent_check.count(allowance, now)
            except ConsentRefused as refused:
                span.set_attribute("cornerstore.consent", refused.reason)
                raise
            span.set_attribute("cornerstore.consent", "found")
        return allowance

    def _fetch(
        self,
        session: Session,
        permit: Permit,
        request: ReadRequest,
        after: tuple[datetime, int] | None,
        allowance: Allowance | None,
    ) -> tuple[Page, tuple[str, ...]]:
        category = request.category
        fields = self._allowed_fields(permit, category)
        # Under a consent, only the part of the asked window inside its data range.
        since, until = (
            (allowance.since, allowance.until) if allowance else (request.since, request.until)
        )
        with _span("gate.fetch"):
            rows = repository.read_window(
                session,
                repository.Window(
                    shop_id=request.shop_id,
                    category=category,
                    since=since,
                    until=until,
                    after=after,
                    limit=request.limit + 1,
                ),
            )
        more = len(rows) > request.limit
        rows = rows[: request.limit]
        records: list[dict[str, Any]] = []
        if rows:
            keyring, shop_id = self._hub.keyring, request.shop_id
            current = keyring.cipher(session, shop_id)
            pseudonym_scope = str(permit.caller.id)
            with _span("gate.decrypt_minimise"):
                for _row_id, occurred_at, record_key, sealed in rows:
                    version = sealed_key_version(sealed)
                    cipher = (
                        current
                        if version == current.version
                        else keyring.cipher(session, shop_id, version)
                    )
                    plaintext = cipher.open(
                        category, VALUES_FIELD, bytes(record_key), bytes(sealed)
                    )
                    values = decode_values(category, occurred_at, plaintext)
                    records.append(minimise(values, fields, current, pseudonym_scope))
        next_cursor = encode_cursor(rows[-1][1], rows[-1][0]) if more else None
        return Page(records, next_cursor), fields

    def _allowed_fields(self, permit: Permit, category: Category) -> tuple[str, ...]:
        if permit.relation == OWN:
            return FIELDS[category]  # The shop sees all of its own data.
        purpose = self._hub.authorizer.purposes.get(permit.purpose)
        fields = purpose.fields.get(category) if purpose else None
        if not fields:
            # Casbin allowed a pair the purpose catalogue does not describe:
            # the policy files disagree, so nothing goes out.
            raise _Refused("no_fields_for_purpose")
        return fields

    def _refuse(
        self,
        session: Session,
        caller: Caller,
        request: ReadRequest,
        purpose: str | None,
        reason: str,
        *,
        best_effort: bool = False,
    ) -> None:
        try:
            record_refusal(
                self._hub,
                session,
                caller,
                action="read",
                shop_id=request.shop_id,
                reason=reason,
                category=request.category.value,
                purpose=purpose,
            )
        except Exception as exc:
            if not best_effort:
                raise ServiceUnavailable() from None
            _log.error(
                "could not audit a refused read of shop %s: %s",
                request.shop_id,
                type(exc).__name__,
            )

    def _record_allowed(
        self,
        session: Session,
        permit: Permit,
        request: ReadRequest,
        consent_id: uuid.UUID | None,
        count: int,
        fields: tuple[str, ...],
    ) -> None:
        draft = AuditDraft(
            action="read",
            decision=Decision.allow,
            reason="owner" if consent_id is None else "consent",
            principal_id=permit.caller.id,
            principal_role=permit.caller.role,
            shop_id=request.shop_id,
            category=request.category.value,
            purpose=permit.purpose,
            policy_version=permit.policy_version,
            details={
                "records": count,
                "consent_id": str(consent_id) if consent_id else None,
                "fields": list(fields),
            },
        )
        try:
            with _span("gate.audit"):
                self._hub.audit_writer.append(draft)
        except Exception as exc:
            # No audit record, no data.
            _log.error(
                "audit write failed, read of shop %s withheld: %s",
                request.shop_id,
                type(exc).__name__,
            )
            raise ServiceUnavailable() from None


class ShopExport:
    """A permitted export: iterates one shop's decrypted records, page by page.

    Memory stays bounded by the page size whatever the shop holds.
    """

    def __init__(self, hub: Core, shop_id: uuid.UUID, *, page_size: int = 1000) -> None:
        self._hub = hub
        self.shop_id = shop_id
        self._page_size = page_size

    def records(self, session: Session, category: Category) -> Iterator[dict[str, Any]]:
        keyring, after = self._hub.keyring, None
        while True:
            rows = repository.read_window(
                session,
                repository.Window(self.shop_id, category, None, None, after, self._page_size),
            )
            for _row_id, occurred_at, record_key, sealed in rows:
                cipher = keyring.cipher(session, self.shop_id, sealed_key_version(sealed))
                plaintext = cipher.open(category, VALUES_FIELD, bytes(record_key), bytes(sealed))
                yield decode_values(category, occurred_at, plaintext)
            if len(rows) < self._page_size:
                return
            after = (rows[-1][1], rows[-1][0])

    def quarantined(self, session: Session) -> Iterator[dict[str, Any]]:
        """Records that were refused at ingestion, as they arrived, with the reason."""
        keyring, after = self._hub.keyring, 0
        while True:
            rows = repository.read_quarantine(session, self.shop_id, after, self._page_size)
            for row in rows:
                cipher = keyring.cipher(session, self.shop_id, row.key_version)
                raw = cipher.open(
                    QUARANTINE_KIND,
                    RAW_FIELD,
                    quarantine_record_key(row.batch_id, row.position),
                    bytes(row.sealed),
                )
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


def _span(name: str) -> AbstractContextManager[Span]:
    """A gate span that never records an exception's message: it could hold shop data."""
    return _tracer.start_as_current_span(
        name, record_exception=False, set_status_on_exception=False
    )


def minimise(
    values: dict[str, Any], fields: tuple[str, ...], cipher: ShopCipher, pseudonym_scope: str
) -> dict[str, Any]:
    """Keep only ``fields``, deriving pseudonyms where a purpose asks for one."""
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


def encode_cursor(occurred_at: datetime, row_id: int) -> str:
    raw = f"{occurred_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, row_id = raw.partition("|")
        parsed = datetime.fromisoformat(when)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        parsed, row = parsed.astimezone(UTC), int(row_id)
        if not 0 <= row < 2**63:
            raise ValueError("row id out of range")
        return parsed, row
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed(
            "the cursor is not one this API returned",
            [FieldError(field="query.cursor", reason="malformed cursor")],
        ) from None
