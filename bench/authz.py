"""Authz: decision latency and memory at 1k, 100k and 1M shops, three consents each.

Cornerstore's Casbin policy is per role, not per shop, and its decisions are
memoised, so neither latency nor memory should move with the number of
shops. The baseline is the per-shop design measured in the same run: one
Casbin line per consent, decided by ``casbin.FastEnforcer`` indexed on
(subject, shop). Each size is built in a fresh child process so that memory
figures are not muddied by earlier sizes.

The consent check itself is a separate gate step, an indexed database
lookup; its latency at the same sizes is reported too (PostgreSQL).
"""

from __future__ import annotations

import multiprocessing
import random
import tempfile
import time
import uuid
from pathlib import Path

import casbin
from sqlalchemy import Engine

from bench.common import Size, libpq, percentile, report, rss_mib, scratch_postgres
from cornerstore.access import relation_of
from cornerstore.authz import Action, Authorizer, DecisionRequest, PurposeName
from cornerstore.categories import Category
from cornerstore.identity import Caller
from cornerstore.settings import Settings

GOAL_P50_US = 20.0
CONSUMERS = 1000
CATEGORIES = ("sales", "inventory", "payments")
PURPOSE_OF = {"sales": "analytics", "inventory": "replenishment", "payments": "credit-assessment"}

BASELINE_MODEL = """
[request_definition]
r = sub, shop, obj, act
[policy_definition]
p = sub, shop, obj, act
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.sub == p.sub && r.shop == p.shop && r.obj == p.obj && r.act == p.act
"""


def _consent(shop: int, j: int) -> tuple[int, int, str]:
    """The j-th of a shop's three consents: (consumer, shop, category)."""
    return ((shop * 3 + j) % CONSUMERS, shop, CATEGORIES[j])


def _consents(shops: int) -> list[tuple[int, int, str]]:
    return [_consent(shop, j) for shop in range(shops) for j in range(3)]


def _sample(shops: int, samples: int, seed: int) -> list[tuple[int, int, str]]:
    """Consents picked at random from all of them, the same picks for every design."""
    rng = random.Random(seed)
    return [_consent(rng.randrange(shops), rng.randrange(3)) for _ in range(samples)]


def _time(decide: object, requests: list[tuple[int, int, str]]) -> list[float]:
    assert callable(decide)
    samples = []
    for request in requests:
        started = time.perf_counter_ns()
        allowed = decide(*request)
        samples.append((time.perf_counter_ns() - started) / 1000)
        assert allowed, request
    return samples


def _measure_baseline(shops: int, samples: int) -> tuple[float, float, float, float]:
    before = rss_mib()
    consents = _consents(shops)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.conf"
        model.write_text(BASELINE_MODEL)
        policy = Path(tmp) / "policy.csv"
        with policy.open("w") as handle:
            for consumer, shop, category in consents:
                handle.write(f"p, c{consumer}, s{shop}, {category}, read\n")
        started = time.perf_counter()
        enforcer = casbin.FastEnforcer(str(model), str(policy), cache_key_order=[0, 1])
        load_s = time.perf_counter() - started
    memory = rss_mib() - before
    requests = _sample(shops, samples, seed=1)
    timings = _time(lambda c, s, cat: enforcer.enforce(f"c{c}", f"s{s}", cat, "read"), requests)
    return percentile(timings, 0.5), percentile(timings, 0.99), memory, load_s


def _measure_cornerstore(shops: int, samples: int) -> tuple[float, float, float, float]:
    before = rss_mib()
    started = time.perf_counter()
    authorizer = Authorizer(Settings().policy_dir)
    load_s = time.perf_counter() - started
    # All the state a decision needs; the callers and shop ids below stand in
    # for what each request brings with it.
    memory = rss_mib() - before
    consumers = [Caller(uuid.uuid4(), f"c{i}", "consumer", frozenset()) for i in range(CONSUMERS)]
    shop_ids = [uuid.UUID(int=i + 1) for i in range(shops)]
    requests = _sample(shops, samples, seed=1)

    # The typed resource and purpose each request carries, as the gate's permit holds them.
    typed = {c: (Category(c), PurposeName(PURPOSE_OF[c])) for c in CATEGORIES}

    def decide(consumer: int, shop: int, category: str) -> bool:
        caller, shop_id = consumers[consumer], shop_ids[shop]
        resource, purpose = typed[category]
        return authorizer.decide(
            DecisionRequest(
                caller.role, relation_of(caller, shop_id), resource, Action.read, purpose
            )
        )

    timings = _time(decide, requests)
    return percentile(timings, 0.5), percentile(timings, 0.99), memory, load_s


def _in_child(function: object, *args: int) -> tuple[float, float, float, float]:
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result: tuple[float, float, float, float] = pool.apply(function, args)  # type: ignore[arg-type]
        return result


def _copy_consents(
    database_url: str, shops: int, shop_ids: list[uuid.UUID], consumer_ids: list[uuid.UUID]
) -> None:
    """COPY the shops, the consumers and each shop's three active consents, then ANALYZE."""
    import psycopg

    with psycopg.connect(libpq(database_url)) as connection, connection.cursor() as cursor:
        with cursor.copy("COPY shops (id, name, created_at) FROM STDIN") as copy:
            for shop_id in shop_ids:
                copy.write_row((shop_id, "s", "2026-01-01T00:00:00Z"))
        with cursor.copy("COPY principals (id, name, role, created_at) FROM STDIN") as copy:
            for consumer_id in consumer_ids:
                copy.write_row(
                    (
                        consumer_id,
                        "c",
                        "consumer",
                        "2026-01-01T00:00:00Z",
                    )
                )
        with cursor.copy(
            "COPY consents (id, shop_id, consumer_id, purpose, categories, status, granted_by, "
            "granted_at, expires_at, valid_from, created_at, updated_at, version, access_mode, "
            "range_last_days, data_life_seconds, paused_by_shop, uses, day_uses) FROM STDIN"
        ) as copy:
            for consumer, shop, category in (
                _consent(shop, j) for shop in range(shops) for j in range(3)
            ):
                copy.write_row(
                    (
                        uuid.uuid4(),
                        shop_ids[shop],
                        consumer_ids[consumer],
                        PURPOSE_OF[category],
                        f'["{category}"]',
                        "active",
                        shop_ids[shop],
                        "2026-01-01T00:00:00Z",
                        "2099-01-01T00:00:00Z",
                        "2026-01-01T00:00:00Z",
                        "2026-01-01T00:00:00Z",
                        "2026-01-01T00:00:00Z",
                        1,
                        "rows",
                        365,
                        30 * 86400,
                        False,
                        0,
                        0,
                    )
                )
        cursor.execute("ANALYZE consents")
        connection.commit()


def _time_consent_checks(
    engine: Engine,
    chosen: list[tuple[int, int, str]],
    shop_ids: list[uuid.UUID],
    consumer_ids: list[uuid.UUID],
) -> list[float]:
    """The gate's consent check for each chosen consent, in one session, timed in µs."""
    from consent import enforcement
    from cornerstore.db import make_sessionmaker, utcnow

    sessions = make_sessionmaker(engine)
    timings: list[float] = []
    with sessions() as session:
        for consumer, shop, category in chosen:
            started = time.perf_counter_ns()
            found = enforcement.check(
                session,
                shop_id=shop_ids[shop],
                consumer_id=consumer_ids[consumer],
                purpose=PURPOSE_OF[category],
                category=category,
                since=None,
                until=None,
                now=utcnow(),
            )
            timings.append((time.perf_counter_ns() - started) / 1000)
            assert found.consent_id is not None
    return timings


def _consent_lookup(shops: int, samples: int) -> tuple[float, float]:
    """p50/p99 of the gate's consent check with ``shops`` shops, three consents each."""
    from cornerstore.db import make_engine
    from cornerstore.migrations import upgrade

    with scratch_postgres() as url:
        engine = make_engine(url)
        upgrade(engine)
        shop_ids = [uuid.UUID(int=i + 1) for i in range(shops)]
        consumer_ids = [uuid.UUID(int=10**12 + i) for i in range(CONSUMERS)]
        _copy_consents(url, shops, shop_ids, consumer_ids)
        chosen = _sample(shops, samples, seed=2)
        timings = _time_consent_checks(engine, chosen, shop_ids, consumer_ids)
        engine.dispose()
        return percentile(timings, 0.5), percentile(timings, 0.99)


def _figures(measured: tuple[float, float, float, float]) -> str:
    p50, p99, memory, load = measured
    return f"{p50:8.2f} / {p99:8.2f} µs   memory +{memory:7.1f} MiB   load {load:6.2f} s"


def run(size: Size) -> dict[str, float]:
    sizes = (100, 1_000) if size.smoke else (1_000, 100_000, 1_000_000)
    samples = size.pick(500, 20_000)
    figures: dict[str, float] = {}
    rows: list[tuple[str, str]] = []
    for shops in sizes:
        ours = _in_child(_measure_cornerstore, shops, samples)
        base = _in_child(_measure_baseline, shops, samples)
        lookup = _consent_lookup(shops, size.pick(200, 2000))
        rows += [
            (
                f"{shops:>9,} shops  Cornerstore decision p50 / p99",
                _figures(ours),
            ),
            (
                f"{shops:>9,} shops  FastEnforcer, per-shop lines",
                _figures(base),
            ),
            (f"{shops:>9,} shops  ratio of p50 (baseline / ours)", f"{base[0] / ours[0]:8.1f}x"),
            (
                f"{shops:>9,} shops  consent check in PostgreSQL p50 / p99",
                f"{lookup[0]:8.1f} / {lookup[1]:8.1f} µs",
            ),
        ]
        figures[f"authz_p50_us_{shops}"] = ours[0]
        figures[f"authz_p99_us_{shops}"] = ours[1]
        figures[f"authz_fastenforcer_p50_us_{shops}"] = base[0]
        figures[f"consent_lookup_p50_us_{shops}"] = lookup[0]
    report(
        f"authz: {samples} allowed decisions per size "
        f"(goal: p50 <= {GOAL_P50_US} µs at 1M shops, flat)",
        rows,
    )
    return figures
