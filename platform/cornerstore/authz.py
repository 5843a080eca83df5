"""Casbin decides who may do what. Loaded once per process and kept on the hub.

The model and policies live in policies/. Policies are per role, not per
shop, so the policy set does not grow with the number of shops. The inputs of
a decision come from a small finite set (role, relation, resource, action,
purpose), so decisions are memoised per process: after the first request of
a kind, a decision is one dictionary lookup, flat from one shop to a million.
The memo is never stale because the policy is immutable for the life of the
:class:`Authorizer`; changing policy means building a new one.
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import casbin
from pydantic import TypeAdapter, ValidationError

from cornerstore.categories import Category

MODEL_FILE: Final = "model.conf"
POLICY_FILE: Final = "policy.csv"
PURPOSES_FILE: Final = "purposes.toml"

#: The purpose the audit log records when a shop reads its own data.
OWNER_PURPOSE: Final = "owner"


class Relation(StrEnum):
    """A caller's relation to the shop a request is about, derived from its credential."""

    #: The caller keeps the shop, or writes for it.
    own = "own"
    #: Anything else, including requests about no shop.
    other = "other"


class Resource(StrEnum):
    """What a request acts on, besides the data categories (``Category``), as policy.csv names it.

    A policy test keeps this and policy.csv in step.
    """

    shop = "shop"
    principal = "principal"
    consent = "consent"
    consent_request = "consent-request"
    consent_receipt = "consent-receipt"
    consent_history = "consent-history"
    access_log = "access-log"
    webhook = "webhook"
    audit = "audit"
    audit_proof = "audit-proof"
    #: The caller's own principal, as GET /v1/principals/me shows it.
    identity = "identity"
    #: A principal's API keys.
    principal_key = "principal-key"
    #: A consumer's name and description, as shopkeepers see them.
    consumer = "consumer"
    #: A one-time link into the web console.
    sign_in_link = "sign-in-link"
    #: A full verification of the audit log, run in the background.
    audit_verification = "audit-verification"
    #: A question across shops (analytics), answered with noise.
    analytics_query = "analytics-query"
    #: What each query spent of a privacy budget.
    privacy_ledger = "privacy-ledger"
    #: A shop's own totals, best sellers, stock left and payment mix.
    shop_summary = "shop-summary"
    #: What a consumer proposes to a shop (an order, a credit line), and the shop's answer.
    proposal = "proposal"
    #: A shop's refused records, with their reasons, to be fixed and resubmitted or discarded.
    quarantine = "quarantine"
    #: A connector's public key, which its messages on the ingest stream are signed with.
    signing_key = "signing-key"


class Action(StrEnum):
    """What a request does to its resource, as policy.csv names it."""

    create = "create"
    read = "read"
    write = "write"
    list = "list"
    erase = "erase"
    export = "export"
    disable = "disable"


class PurposeName(StrEnum):
    """The purposes a consumer can declare; purposes.toml says what each may see.

    Named here for the API's schemas; a policy test keeps it equal to the
    catalogue.
    """

    replenishment = "replenishment"
    analytics = "analytics"
    credit_assessment = "credit-assessment"


class AuditedPurpose(StrEnum):
    """The purposes the audit log records: the declared ones, and ``owner`` for a shop's own."""

    replenishment = "replenishment"
    analytics = "analytics"
    credit_assessment = "credit-assessment"
    owner = OWNER_PURPOSE


class PolicyError(Exception):
    """The policy files are missing or inconsistent. The hub does not start."""


@dataclass(frozen=True, slots=True)
class Purpose:
    """One entry of the purpose catalogue (policies/purposes.toml)."""

    code: str
    #: Language tag ("en", "zh") to text.
    title: Mapping[str, str]
    description: Mapping[str, str]
    #: The W3C Data Privacy Vocabulary term for this purpose (an IRI).
    dpv: str
    #: Category to the fields this purpose may see of it.
    fields: Mapping[str, tuple[str, ...]]
    max_data_range: timedelta
    max_validity: timedelta
    max_data_life: timedelta


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    role: str
    relation: Relation
    resource: Resource | Category
    action: Action
    #: None where the caller declared none, or needs none (the shop's own reads).
    purpose: PurposeName | None = None


class Authorizer:
    def __init__(self, policy_dir: Path) -> None:
        paths = [policy_dir / name for name in (MODEL_FILE, POLICY_FILE, PURPOSES_FILE)]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise PolicyError(f"policy files missing: {', '.join(missing)}")
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        #: Recorded in every audit entry, so a decision can be traced to its policy.
        self.policy_version = digest.hexdigest()[:16]
        self._enforcer = casbin.Enforcer(str(paths[0]), str(paths[1]))
        # Every decision is in the audit log already; Casbin's own per-request
        # warning lines would only repeat it.
        logging.getLogger("casbin.enforcer").setLevel(logging.ERROR)
        if not self._enforcer.get_policy():
            raise PolicyError(f"{paths[1]} holds no policy; an empty policy would deny everything")
        self.purposes = _load_purposes(paths[2])
        self._memo: dict[DecisionRequest, bool] = {}

    def decide(self, request: DecisionRequest) -> bool:
        decision = self._memo.get(request)
        if decision is None:
            decision = bool(
                self._enforcer.enforce(
                    request.role,
                    request.relation.value,
                    request.resource.value,
                    request.action.value,
                    # No purpose matches only policy lines that say "any".
                    request.purpose.value if request.purpose else "",
                )
            )
            self._memo[request] = decision
        return decision

    def purpose_allows(self, purpose: str, category: str) -> bool:
        """Whether any consumer may ever read ``category`` for ``purpose``."""
        try:
            request = DecisionRequest(
                "consumer", Relation.other, Category(category), Action.read, PurposeName(purpose)
            )
        except ValueError:
            return False  # A purpose or category the hub does not know.
        return self.decide(request)


LANGUAGES: Final = ("en", "zh")
_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def _texts(path: Path, code: str, table: dict[str, Any], key: str) -> dict[str, str]:
    texts = table.get(key)
    if not isinstance(texts, dict) or not all(
        isinstance(texts.get(lang), str) and texts[lang].strip() for lang in LANGUAGES
    ):
        raise PolicyError(f"{path}: purpose {code!r} needs {key} in {' and '.join(LANGUAGES)}")
    return {lang: texts[lang] for lang in LANGUAGES}


def _duration(path: Path, code: str, table: dict[str, Any], key: str) -> timedelta:
    raw = table.get(key)
    try:
        if not isinstance(raw, str) or not raw.startswith("P"):
            raise ValueError(raw)
        value = _DURATION.validate_python(raw)
    except (ValueError, ValidationError):
        raise PolicyError(f"{path}: purpose {code!r} needs {key} as an ISO 8601 duration") from None
    if value <= timedelta(0):
        raise PolicyError(f"{path}: purpose {code!r} has a {key} that is not positive")
    return value


def _load_purposes(path: Path) -> dict[str, Purpose]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    purposes: dict[str, Purpose] = {}
    for code, table in raw.items():
        if not isinstance(table, dict):
            raise PolicyError(f"{path}: {code!r} is not a purpose table")
        fields = table.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise PolicyError(f"{path}: purpose {code!r} lists no fields")
        dpv = table.get("dpv")
        if not isinstance(dpv, str) or not dpv.startswith("https://w3id.org/dpv#"):
            raise PolicyError(
                f"{path}: purpose {code!r} needs its DPV term (https://w3id.org/dpv#...)"
            )
        purposes[code] = Purpose(
            code=code,
            title=_texts(path, code, table, "name"),
            description=_texts(path, code, table, "description"),
            dpv=dpv,
            fields={category: tuple(str(f) for f in names) for category, names in fields.items()},
            max_data_range=_duration(path, code, table, "max_data_range"),
            max_validity=_duration(path, code, table, "max_validity"),
            max_data_life=_duration(path, code, table, "max_data_life"),
        )
    return purposes
