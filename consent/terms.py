"""A consent's terms: checked against the purpose catalogue, narrowed, written as an artefact."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from consent.schemas import DataRange, NarrowingIn
from cornerstore.authz import Purpose
from cornerstore.errors import FieldError, ValidationFailed
from cornerstore.models.consent import AccessMode, Consent

#: How far in the past a stated valid_from may lie: clocks differ a little.
VALID_FROM_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class Terms:
    """Everything a consent states apart from who and its status."""

    purpose: str
    categories: tuple[str, ...]
    access_mode: AccessMode
    range_from: datetime | None
    range_until: datetime | None
    range_last_days: int | None
    max_reads_per_day: int | None
    valid_from: datetime
    valid_until: datetime
    data_life: timedelta

    @classmethod
    def of(cls, consent: Consent) -> Terms:
        return cls(
            purpose=consent.purpose,
            categories=tuple(consent.categories),
            access_mode=AccessMode(consent.access_mode),
            range_from=consent.range_from,
            range_until=consent.range_until,
            range_last_days=consent.range_last_days,
            max_reads_per_day=consent.max_reads_per_day,
            valid_from=consent.valid_from,
            valid_until=consent.expires_at,
            data_life=timedelta(seconds=consent.data_life_seconds),
        )

    def columns(self) -> dict[str, Any]:
        """The terms as ``consents`` columns."""
        return {
            "purpose": self.purpose,
            "categories": list(self.categories),
            "access_mode": self.access_mode.value,
            "range_from": self.range_from,
            "range_until": self.range_until,
            "range_last_days": self.range_last_days,
            "max_reads_per_day": self.max_reads_per_day,
            "valid_from": self.valid_from,
            "expires_at": self.valid_until,
            "data_life_seconds": int(self.data_life.total_seconds()),
        }

    @property
    def range_span(self) -> timedelta:
        if self.range_last_days is not None:
            return timedelta(days=self.range_last_days)
        assert self.range_from is not None
        assert self.range_until is not None
        return self.range_until - self.range_from

    def data_range(self) -> dict[str, Any]:
        if self.range_last_days is not None:
            return {"last_days": self.range_last_days}
        return {"from": iso(self.range_from), "until": iso(self.range_until)}


def iso(value: datetime | None) -> str | None:
    """UTC, ISO 8601 with a Z: how artefacts and receipts write times."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_duration(value: timedelta) -> str:
    """Whole days as PnD, anything finer as PTnS."""
    seconds = int(value.total_seconds())
    return f"P{seconds // 86400}D" if seconds % 86400 == 0 else f"PT{seconds}S"


def build(
    purpose: Purpose,
    *,
    categories: list[str],
    access_mode: AccessMode,
    data_range: DataRange | None,
    max_reads_per_day: int | None,
    valid_from: datetime | None,
    valid_until: datetime,
    data_life: timedelta | None,
    allowed_categories: frozenset[str],
    now: datetime,
) -> Terms:
    """Terms as asked, defaults filled from the catalogue; every fault named at once."""
    start = valid_from or now
    terms = Terms(
        purpose=purpose.code,
        categories=tuple(sorted(set(categories))),
        access_mode=access_mode,
        range_from=data_range.from_ if data_range else None,
        range_until=data_range.until if data_range else None,
        range_last_days=(data_range.last_days if data_range else purpose.max_data_range.days or 1),
        max_reads_per_day=max_reads_per_day,
        valid_from=start,
        valid_until=valid_until,
        data_life=data_life if data_life is not None else purpose.max_data_life,
    )
    check(purpose, terms, allowed_categories=allowed_categories, now=now)
    return terms


def check(
    purpose: Purpose, terms: Terms, *, allowed_categories: frozenset[str], now: datetime
) -> None:
    """Refuse terms the purpose does not allow, naming each field."""
    problems: list[FieldError] = []
    refused = sorted(set(terms.categories) - allowed_categories)
    if refused:
        problems.append(
            FieldError(
                field="body.categories",
                reason=f"purpose {purpose.code} never covers {', '.join(refused)}",
            )
        )
    if terms.range_span > purpose.max_data_range:
        problems.append(
            FieldError(
                field="body.data_range",
                reason=f"purpose {purpose.code} covers at most "
                f"{iso_duration(purpose.max_data_range)} of data",
            )
        )
    if terms.valid_from < now - VALID_FROM_SLACK:
        problems.append(
            FieldError(field="body.valid_from", reason="must not lie in the past (omit it for now)")
        )
    if terms.valid_until <= now:
        problems.append(FieldError(field="body.expires_at", reason="must be in the future"))
    elif terms.valid_until <= terms.valid_from:
        problems.append(FieldError(field="body.expires_at", reason="must be after valid_from"))
    elif terms.valid_until - max(terms.valid_from, now) > purpose.max_validity:
        problems.append(
            FieldError(
                field="body.expires_at",
                reason=f"purpose {purpose.code} allows at most "
                f"{iso_duration(purpose.max_validity)} of validity",
            )
        )
    if terms.data_life < timedelta(seconds=1) or terms.data_life.microseconds:
        problems.append(
            FieldError(
                field="body.data_life", reason="must be a whole number of seconds, at least 1"
            )
        )
    elif terms.data_life > purpose.max_data_life:
        problems.append(
            FieldError(
                field="body.data_life",
                reason=f"purpose {purpose.code} lets data be kept at most "
                f"{iso_duration(purpose.max_data_life)}",
            )
        )
    if problems:
        raise ValidationFailed("the consent cannot be given as asked", problems)


def narrow(requested: Terms, body: NarrowingIn) -> Terms:
    """The requested terms, narrowed as the shopkeeper asks; widening any of them is refused."""
    problems: list[FieldError] = []
    terms = requested
    if body.categories is not None:
        asked = tuple(sorted({c.value for c in body.categories}))
        if not set(asked) <= set(requested.categories):
            problems.append(FieldError(field="body.categories", reason="must be among those asked"))
        terms = replace(terms, categories=asked)
    if body.access_mode is not None:
        if (
            requested.access_mode is AccessMode.aggregate_only
            and body.access_mode is AccessMode.rows
        ):
            problems.append(
                FieldError(field="body.access_mode", reason="aggregate-only cannot become rows")
            )
        terms = replace(terms, access_mode=body.access_mode)
    if body.data_range is not None:
        if not _range_within(body.data_range, requested):
            problems.append(
                FieldError(field="body.data_range", reason="must lie within the range asked")
            )
        terms = replace(
            terms,
            range_from=body.data_range.from_,
            range_until=body.data_range.until,
            range_last_days=body.data_range.last_days,
        )
    if body.max_reads_per_day is not None:
        limit = requested.max_reads_per_day
        if limit is not None and body.max_reads_per_day > limit:
            problems.append(
                FieldError(field="body.max_reads_per_day", reason=f"must be at most {limit}")
            )
        terms = replace(terms, max_reads_per_day=body.max_reads_per_day)
    if body.expires_at is not None:
        if body.expires_at > requested.valid_until:
            problems.append(
                FieldError(field="body.expires_at", reason="must not be later than asked")
            )
        terms = replace(terms, valid_until=body.expires_at)
    if body.data_life is not None:
        if body.data_life > requested.data_life:
            problems.append(
                FieldError(field="body.data_life", reason="must not be longer than asked")
            )
        terms = replace(terms, data_life=body.data_life)
    if problems:
        raise ValidationFailed("a shopkeeper may only narrow a request", problems)
    return terms


def _range_within(narrowed: DataRange, requested: Terms) -> bool:
    if requested.range_last_days is not None:
        # A rolling window stays narrowed only by a shorter rolling window: fixed
        # dates would keep covering days the window has long moved past.
        return narrowed.last_days is not None and narrowed.last_days <= requested.range_last_days
    if narrowed.last_days is not None:
        return False
    return (
        requested.range_from is not None
        and requested.range_until is not None
        and narrowed.from_ is not None
        and narrowed.until is not None
        and requested.range_from <= narrowed.from_
        and narrowed.until <= requested.range_until
    )


def artefact(
    consent: Consent,
    purpose: Purpose | None,
    *,
    change: str,
    changed_by: str,
    changed_by_role: str,
    changed_at: datetime,
) -> dict[str, Any]:
    """The document a version's receipt signs: every term, who changed what, and when."""
    terms = Terms.of(consent)
    fields: Mapping[str, tuple[str, ...]] = purpose.fields if purpose else {}
    return {
        "consent_id": str(consent.id),
        "version": consent.version,
        "previous_version": consent.version - 1 if consent.version > 1 else None,
        "shop_id": str(consent.shop_id),
        "consumer_id": str(consent.consumer_id),
        "purpose": {
            "code": consent.purpose,
            "dpv": purpose.dpv if purpose else None,
            "name": dict(purpose.title) if purpose else None,
        },
        "categories": list(terms.categories),
        "fields": {c: list(fields.get(c, ())) for c in terms.categories},
        "access_mode": terms.access_mode.value,
        "data_range": terms.data_range(),
        "max_reads_per_day": terms.max_reads_per_day,
        "valid_from": iso(terms.valid_from),
        "valid_until": iso(terms.valid_until),
        "data_life": iso_duration(terms.data_life),
        "status": consent.status,
        "change": change,
        "changed_by": changed_by,
        "changed_by_role": changed_by_role,
        "changed_at": iso(changed_at),
    }
