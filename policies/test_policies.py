"""The policy files, checked as the hub loads them: who may do what, and that
policy.csv, purposes.toml and the code agree with each other.

This module is collected from policies/ and deliberately imports nothing from
tests/: it needs no database and no app, only the real Casbin enforcer.
"""

from __future__ import annotations

import csv
import itertools
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from cornerstore.authz import (
    Action,
    Authorizer,
    DecisionRequest,
    PolicyError,
    PurposeName,
    Relation,
    Resource,
)
from cornerstore.categories import CATEGORIES, Category
from cornerstore.gate import PSEUDONYMS

POLICY_DIR = Path(__file__).resolve().parent

ROLES = ("admin", "shopkeeper", "connector", "consumer", "auditor")
DATA = tuple(Category)
RESOURCES: tuple[Resource | Category, ...] = (*DATA, *Resource)
ACTIONS = tuple(Action)
RELATIONS = tuple(Relation)
OWN, OTHER = Relation.own, Relation.other
NO_PURPOSE = None


def _purposes_toml() -> dict[str, dict[str, object]]:
    return tomllib.loads((POLICY_DIR / "purposes.toml").read_text(encoding="utf-8"))


def _toml_pairs() -> set[tuple[str, str]]:
    """(purpose, category) for every category a purpose in purposes.toml lists fields for."""
    return {
        (purpose, category)
        for purpose, table in _purposes_toml().items()
        for category in _fields_of(table)
    }


def _fields_of(table: dict[str, object]) -> dict[str, list[str]]:
    fields = table["fields"]
    assert isinstance(fields, dict)
    return fields


def _policy_rows() -> list[list[str]]:
    text = (POLICY_DIR / "policy.csv").read_text(encoding="utf-8")
    rows = [[cell.strip() for cell in row] for row in csv.reader(text.splitlines()) if row]
    return [row for row in rows if not row[0].startswith("#")]


PURPOSES = tuple(sorted(_purposes_toml()))
ALL_PURPOSES: tuple[PurposeName | None, ...] = (*PurposeName, None)


@pytest.fixture(scope="module")
def authorizer() -> Authorizer:
    return Authorizer(POLICY_DIR)


def expected(
    role: str,
    relation: Relation,
    resource: Resource | Category,
    action: Action,
    purpose: PurposeName | None,
) -> bool:
    """The access model, written out independently of policy.csv."""
    if resource == "identity":
        # Every principal may see who it is.
        return role in ROLES and action == "read"
    if resource == "consumer":
        # Who asks for a shop's data is no secret from those who decide or review it.
        return role in ("shopkeeper", "admin", "auditor") and action == "read"
    if resource in ("principal-key", "sign-in-link"):
        # An admin rotates any key; a shopkeeper its own and its shops' connectors'.
        # Sign-in links likewise (the service refuses them for any but people).
        return action == "create" and (
            role == "admin" or (role == "shopkeeper" and relation == OWN)
        )
    if resource == "signing-key":
        # The key a connector signs stream messages with: registered, listed and revoked
        # by the connector itself, its shopkeeper, or an admin.
        return action in ("create", "disable", "read") and (
            role == "admin" or (role in ("shopkeeper", "connector") and relation == OWN)
        )
    if role == "admin":
        # An admin erases a shop on its shopkeeper's behalf, but never exports its data;
        # it keeps a shop's own details (its time zone), which are no shop data.
        return (
            (resource in ("shop", "principal") and action == "create")
            or (resource == "shop" and action in ("erase", "read", "write"))
            or (resource == "principal" and action in ("list", "disable"))
        )
    if role == "shopkeeper":
        if resource == "audit-proof":  # checkpoints and proofs name no shop
            return action == "read"
        if relation != OWN:
            return False
        if resource in (*DATA, "consent", "quarantine"):
            return action in ("read", "write")
        if resource in ("consent-receipt", "consent-history", "privacy-ledger", "shop-summary"):
            return action == "read"
        if resource == "shop":
            return action in ("erase", "export", "read", "write")
        if resource == "proposal":  # what consumers propose to the shop, and its answer
            return action in ("read", "write")
        return resource == "access-log" and action == "read"
    if role == "connector":
        # It sends the shop's records, and fixes those it sent that were refused.
        if relation == OWN and resource == "quarantine":
            return action in ("read", "write")
        return relation == OWN and resource in DATA and action == "write"
    if role == "consumer":
        # Requests and receipts are about someone else's shop; whether a consent
        # is the caller's own is the consent service's check, not Casbin's.
        if resource == "consent-request":
            return relation == OTHER and action == "create"
        if resource == "consent-receipt":
            return relation == OTHER and action == "read"
        if resource == "consent":
            return action == "list"
        if resource == "webhook":
            return action in ("read", "write")
        if resource == "analytics-query":  # the analytics catalogue says for which purposes
            return action == "create"
        if resource == "proposal":  # to another's shop; its own proposals, whichever shop
            return (relation == OTHER and action == "create") or action == "list"
        return action == "read" and (purpose, resource) in _toml_pairs()
    if role == "auditor":
        if resource == "audit-verification":  # the full check runs at an auditor's request
            return action in ("create", "read")
        if resource == "privacy-ledger":
            return action == "read"
        return resource in ("audit", "audit-proof", "consent-history") and action == "read"
    return False


def test_decision_table_matches_the_access_model(authorizer: Authorizer) -> None:
    wrong = []
    for combo in itertools.product(
        (*ROLES, "root", "Admin", ""), RELATIONS, RESOURCES, ACTIONS, ALL_PURPOSES
    ):
        request = DecisionRequest(*combo)
        if authorizer.decide(request) != expected(*combo):
            wrong.append(request)
    assert wrong == []


@pytest.mark.parametrize("relation", RELATIONS)
@pytest.mark.parametrize("resource", [Resource.shop, Resource.principal])
def test_admin_creates_shops_and_principals(
    authorizer: Authorizer, relation: Relation, resource: Resource
) -> None:
    assert authorizer.decide(
        DecisionRequest("admin", relation, resource, Action.create, NO_PURPOSE)
    )


@pytest.mark.parametrize("relation", RELATIONS)
@pytest.mark.parametrize("resource", [*DATA, Resource.consent, Resource.access_log, Resource.audit])
@pytest.mark.parametrize("purpose", ALL_PURPOSES)
def test_admin_reads_no_shop_data(
    authorizer: Authorizer,
    relation: Relation,
    resource: Resource | Category,
    purpose: PurposeName | None,
) -> None:
    assert not authorizer.decide(DecisionRequest("admin", relation, resource, Action.read, purpose))


@pytest.mark.parametrize("category", DATA)
def test_shopkeeper_reads_and_writes_only_their_own_shop(
    authorizer: Authorizer, category: Category
) -> None:
    for action in (Action.read, Action.write):
        assert authorizer.decide(DecisionRequest("shopkeeper", OWN, category, action, NO_PURPOSE))
        for purpose in ALL_PURPOSES:
            assert not authorizer.decide(
                DecisionRequest("shopkeeper", OTHER, category, action, purpose)
            )
    assert authorizer.decide(
        DecisionRequest("shopkeeper", OWN, Resource.consent, Action.write, NO_PURPOSE)
    )
    assert not authorizer.decide(
        DecisionRequest("shopkeeper", OTHER, Resource.consent, Action.write, NO_PURPOSE)
    )


@pytest.mark.parametrize("category", DATA)
def test_connector_writes_its_own_shop_and_never_reads(
    authorizer: Authorizer, category: Category
) -> None:
    assert authorizer.decide(DecisionRequest("connector", OWN, category, Action.write, NO_PURPOSE))
    assert not authorizer.decide(
        DecisionRequest("connector", OTHER, category, Action.write, NO_PURPOSE)
    )
    for relation, purpose in itertools.product(RELATIONS, ALL_PURPOSES):
        assert not authorizer.decide(
            DecisionRequest("connector", relation, category, Action.read, purpose)
        )


def test_consumer_reads_exactly_the_pairs_purposes_toml_lists(authorizer: Authorizer) -> None:
    allowed = {
        (purpose, category)
        for purpose, category in itertools.product(ALL_PURPOSES, DATA)
        if authorizer.decide(DecisionRequest("consumer", OTHER, category, Action.read, purpose))
    }
    assert allowed == _toml_pairs()
    # The concrete catalogue, so that a change to both files at once is still noticed.
    assert allowed == {
        ("replenishment", "sales"),
        ("replenishment", "inventory"),
        ("replenishment", "catalogue"),
        ("analytics", "sales"),
        ("analytics", "inventory"),
        ("analytics", "payments"),
        ("credit-assessment", "sales"),
        ("credit-assessment", "payments"),
    }
    for purpose, category in _toml_pairs():
        assert authorizer.purpose_allows(purpose, category)
        assert not authorizer.decide(
            DecisionRequest(
                "consumer", OTHER, Category(category), Action.write, PurposeName(purpose)
            )
        )
    assert not authorizer.purpose_allows("replenishment", "payments")


def test_auditor_reads_the_audit_log_and_consent_history_only(authorizer: Authorizer) -> None:
    # (and, as every principal, who it is itself, and who the consumers are;
    # and it may start the full check of the log, which reads no shop data)
    checks = {
        (Resource.audit_verification, Action.create),
        (Resource.audit_verification, Action.read),
        (Resource.privacy_ledger, Action.read),
    }
    reviewed = (
        Resource.audit,
        Resource.audit_proof,
        Resource.consent_history,
        Resource.identity,
        Resource.consumer,
    )
    for reviewed_resource in reviewed:
        assert authorizer.decide(
            DecisionRequest("auditor", OTHER, reviewed_resource, Action.read, NO_PURPOSE)
        )
    for relation, resource, action, purpose in itertools.product(
        RELATIONS, RESOURCES, ACTIONS, ALL_PURPOSES
    ):
        if (resource not in reviewed or action != "read") and (resource, action) not in checks:
            assert not authorizer.decide(
                DecisionRequest("auditor", relation, resource, action, purpose)
            )


@pytest.mark.parametrize("role", ["intruder", "", "any", "ADMIN"])
def test_an_unknown_role_is_denied_everything(authorizer: Authorizer, role: str) -> None:
    for relation, resource, action, purpose in itertools.product(
        RELATIONS, RESOURCES, ACTIONS, ALL_PURPOSES
    ):
        assert not authorizer.decide(DecisionRequest(role, relation, resource, action, purpose))


def test_policy_csv_consumer_pairs_equal_purposes_toml() -> None:
    rows = _policy_rows()
    assert rows, "policy.csv holds no policy lines"
    consumer_rows = [row for row in rows if row[1] == "consumer" and row[3] in DATA]
    assert all(row[0] == "p" and row[4] == "read" for row in consumer_rows), consumer_rows
    pairs = [(row[5], row[3]) for row in consumer_rows]
    assert len(pairs) == len(set(pairs)), "a consumer pair is listed twice"
    assert set(pairs) == _toml_pairs()


def test_purpose_names_in_code_equal_purposes_toml() -> None:
    assert {p.value for p in PurposeName} == set(_purposes_toml())


def test_every_purpose_is_named_and_described_in_both_languages_with_its_dpv_term(
    authorizer: Authorizer,
) -> None:
    assert set(authorizer.purposes) == set(_purposes_toml())
    for purpose in authorizer.purposes.values():
        for language in ("en", "zh"):
            assert purpose.title[language].strip()
            assert purpose.description[language].strip()
        assert purpose.dpv.startswith("https://w3id.org/dpv#")
        assert purpose.fields
    dpv = {code: p.dpv.rpartition("#")[2] for code, p in authorizer.purposes.items()}
    assert dpv == {
        "replenishment": "ProvideProductRecommendations",
        "analytics": "CommercialResearch",
        "credit-assessment": "CreditChecking",
    }


def test_every_purpose_sets_its_limits(authorizer: Authorizer) -> None:
    limits = {
        code: (p.max_data_range.days, p.max_validity.days, p.max_data_life.days)
        for code, p in authorizer.purposes.items()
    }
    assert limits == {
        "replenishment": (180, 365, 30),
        "analytics": (365, 365, 90),
        "credit-assessment": (365, 180, 365),
    }


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("max_validity", '"90 days"', "max_validity as an ISO 8601 duration"),
        ("max_validity", '"P0D"', "max_validity that is not positive"),
        ("dpv", '"CreditChecking"', "needs its DPV term"),
    ],
)
def test_a_malformed_catalogue_entry_refuses_to_load(
    tmp_path: Path, key: str, value: str, problem: str
) -> None:
    policy_dir = _copy_policies(tmp_path)
    catalogue = policy_dir / "purposes.toml"
    text = catalogue.read_text(encoding="utf-8")
    start = text.index(f"\n{key} = ", text.index("[credit-assessment]"))
    end = text.index("\n", start + 1)
    catalogue.write_text(text[:start] + f"\n{key} = {value}" + text[end:], encoding="utf-8")
    with pytest.raises(PolicyError, match=re.escape(problem)):
        Authorizer(policy_dir)


def test_a_purpose_without_its_chinese_description_refuses_to_load(tmp_path: Path) -> None:
    policy_dir = _copy_policies(tmp_path)
    catalogue = policy_dir / "purposes.toml"
    text = catalogue.read_text(encoding="utf-8")
    start = text.index("description.zh", text.index("[analytics]"))
    end = text.index("\n", start)
    catalogue.write_text(text[:start] + text[end + 1 :], encoding="utf-8")
    with pytest.raises(PolicyError, match="needs description in en and zh"):
        Authorizer(policy_dir)


def test_purpose_fields_exist_for_their_category() -> None:
    unknown = []
    for purpose, table in _purposes_toml().items():
        for category, fields in _fields_of(table).items():
            assert category in {c.value for c in Category}, (purpose, category)
            assert isinstance(fields, list)
            assert fields, (purpose, category)
            known = set(CATEGORIES[Category(category)].fields)
            for field in fields:
                derived_from = PSEUDONYMS.get(field)
                if field in known or (derived_from is not None and derived_from in known):
                    continue
                unknown.append((purpose, category, field))
    assert unknown == []


def test_no_purpose_sees_a_raw_payer_reference() -> None:
    for purpose, table in _purposes_toml().items():
        payments = _fields_of(table).get("payments", [])
        assert isinstance(payments, list)
        assert "payer_ref" not in payments, purpose


def _copy_policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    target.mkdir()
    for name in ("model.conf", "policy.csv", "purposes.toml"):
        shutil.copy(POLICY_DIR / name, target / name)
    return target


@pytest.mark.parametrize("content", ["", "\n", "# only a comment\n"])
def test_an_empty_policy_file_refuses_to_load(tmp_path: Path, content: str) -> None:
    policy_dir = _copy_policies(tmp_path)
    (policy_dir / "policy.csv").write_text(content, encoding="utf-8")
    with pytest.raises(PolicyError, match=r"policy\.csv holds no policy"):
        Authorizer(policy_dir)


@pytest.mark.parametrize("missing", ["model.conf", "policy.csv", "purposes.toml"])
def test_a_missing_policy_file_refuses_to_load(tmp_path: Path, missing: str) -> None:
    policy_dir = _copy_policies(tmp_path)
    (policy_dir / missing).unlink()
    with pytest.raises(PolicyError, match=missing):
        Authorizer(policy_dir)


def test_editing_a_policy_line_changes_the_policy_version(tmp_path: Path) -> None:
    policy_dir = _copy_policies(tmp_path)
    before = Authorizer(policy_dir)
    assert before.policy_version == Authorizer(POLICY_DIR).policy_version
    assert before.decide(
        DecisionRequest("consumer", OTHER, Category.payments, Action.read, PurposeName.analytics)
    )

    policy = policy_dir / "policy.csv"
    line = "p, consumer, any, payments, read, analytics\n"
    text = policy.read_text(encoding="utf-8")
    assert line in text
    policy.write_text(text.replace(line, ""), encoding="utf-8")
    after = Authorizer(policy_dir)

    assert after.policy_version != before.policy_version
    assert not after.decide(
        DecisionRequest("consumer", OTHER, Category.payments, Action.read, PurposeName.analytics)
    )


def test_editing_purposes_changes_the_policy_version(tmp_path: Path) -> None:
    policy_dir = _copy_policies(tmp_path)
    before = Authorizer(policy_dir).policy_version
    purposes = policy_dir / "purposes.toml"
    text = purposes.read_text(encoding="utf-8")
    edited = text.replace(
        'inventory = ["sku", "on_hand", "counted_at"]', 'inventory = ["sku", "on_hand"]', 1
    )
    assert edited != text
    purposes.write_text(edited, encoding="utf-8")
    assert Authorizer(policy_dir).policy_version != before


def test_resources_and_actions_in_code_equal_policy_csv() -> None:
    """Every resource and action an endpoint can declare has policy lines, and no line names
    one the code cannot ask for (a typo there would silently deny)."""
    rows = _policy_rows()
    assert {row[3] for row in rows} == {r.value for r in RESOURCES}
    assert {row[4] for row in rows} == {a.value for a in Action}
    assert {row[2] for row in rows} <= {r.value for r in Relation} | {"any"}


def test_the_analytics_catalogue_loads_and_names_only_what_purposes_may_see() -> None:
    from analytics import catalogue

    rules = catalogue.load(POLICY_DIR)
    assert set(rules) <= {p.value for p in PurposeName}
    for purpose, purpose_rules in rules.items():
        seen = _fields_of(_purposes_toml()[purpose])
        for category in purpose_rules.categories:
            assert category in {c.value for c in Category}
            # Sums of sales need the fields a row read of the purpose may see.
            assert {"sku", "quantity", "unit_price_cents"} <= set(seen[category])
        assert purpose_rules.min_shops >= 10  # the clean rooms' floor, not below


def test_a_malformed_analytics_catalogue_is_refused(tmp_path: Path) -> None:
    from analytics import catalogue

    (tmp_path / "analytics.toml").write_text(
        '[analytics]\nmin_shops = 10\nepsilon_per_period = 1.0\nperiod = "P1M"\n'
        "max_epsilon = 2.0\ndelta = 1e-7\nmax_cells_per_shop = 10\n",
        encoding="utf-8",
    )
    with pytest.raises(catalogue.CatalogueError, match="period"):
        catalogue.load(tmp_path)
