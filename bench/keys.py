"""Keys: what encryption costs the governed read path, and what a master-key rotation takes.

``decrypt``: the same sales lines, ingested through the ingestion service
(validated and sealed), are also stored in plaintext in a table of the same
shape and indexes in the same database. Both are read page by page (500 rows,
keyset cursor) doing what :meth:`cornerstore.gate.AccessGate._fetch` does per
row: fetch, open the ciphertext (sealed side only), ``decode_values``,
``minimise`` to the analytics purpose's fields. The rest of a request
(authentication, Casbin, consent, audit, HTTP) is the same on both sides and
left out; ``read`` measures it. The sealed side calls the gate's own query
(:func:`repository.read_window`); the plaintext side the same statement on its
table.

``rotation``: ``rotation.rotate_master`` end to end over 100k shops, each with
its key-encryption key in the default file key provider and one data key,
against re-wrapping the same keys in memory (the same provider calls, no
database), in the same run. Every key is checked to be under the new master
afterwards, and a sample to unwrap to the data key it held before.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import BigInteger, Engine, LargeBinary, Row, String, Uuid, func, insert, select
from sqlalchemy import tuple_ as sql_tuple
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bench.common import Size, libpq, median, report, scratch_postgres
from bench.setup import sales_lines
from connectors.service import ingest
from cornerstore.categories import Category
from cornerstore.crypto import new_data_key, sealed_key_version
from cornerstore.db import UTCDateTime, make_engine, session_scope
from cornerstore.gate import minimise
from cornerstore.identity import Caller
from cornerstore.keys import rotation
from cornerstore.keys.localfile import LocalKeyProvider
from cornerstore.keys.ring import WRAP_FORMAT, KeyRing
from cornerstore.migrations import upgrade
from cornerstore.models.keys import ShopKey
from cornerstore.models.principals import Role
from cornerstore.models.shops import Shop
from cornerstore.records import repository
from cornerstore.records.codec import VALUES_FIELD, decode_values
from cornerstore.settings import Environment, Settings
from hub.principals import service as principals
from hub.principals.schemas import PrincipalIn
from hub.runtime import Hub
from hub.shops import service as shops
from hub.shops.schemas import ShopIn

DECRYPT_GOAL = 0.8
PAGE = 500
#: Records per ingestion call, as a connector batch.
INGEST_BATCH = 5000
PURPOSE = "analytics"
ROTATION_BATCH = 1000


def _settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(environment=Environment.test, database_url=database_url, data_dir=data_dir)


def _open_hub(database_url: str, data_dir: Path) -> Hub:
    engine = make_engine(database_url)
    upgrade(engine)
    return Hub.open(_settings(database_url, data_dir), engine=engine)


# --- decrypt ---------------------------------------------------------------------------------


class _BenchBase(DeclarativeBase):
    pass


class PlainRecord(_BenchBase):
    """``shop_records`` with the values in plaintext: made ``LIKE shop_records INCLUDING ALL``."""

    __tablename__ = "bench_plain_records"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    shop_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    category: Mapped[str] = mapped_column(String(16))
    record_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: What ``cipher.open`` returns for the same row of ``shop_records``.
    plaintext: Mapped[bytes] = mapped_column(LargeBinary)


def _plain_window(
    session: Session, window: repository.Window
) -> Sequence[Row[int, datetime, bytes, bytes]]:
    """:func:`repository.read_window`, statement for statement, on the plaintext table."""
    stmt = select(
        PlainRecord.id, PlainRecord.occurred_at, PlainRecord.record_key, PlainRecord.plaintext
    ).where(PlainRecord.shop_id == window.shop_id, PlainRecord.category == window.category)
    if window.since is not None:
        stmt = stmt.where(PlainRecord.occurred_at >= window.since)
    if window.until is not None:
        stmt = stmt.where(PlainRecord.occurred_at < window.until)
    if window.after is not None:
        stmt = stmt.where(
            sql_tuple(PlainRecord.occurred_at, PlainRecord.id) > sql_tuple(*window.after)
        )
    stmt = stmt.order_by(PlainRecord.occurred_at, PlainRecord.id).limit(window.limit)
    return session.execute(stmt).all()


@dataclass(frozen=True)
class _Reader:
    hub: Hub
    shop_id: uuid.UUID
    fields: tuple[str, ...]
    scope: str

    def sealed(self, sink: list[dict[str, Any]] | None = None) -> int:
        """Every row, as the gate reads it: fetch, open, decode, minimise."""
        category, keyring, shop_id = Category.sales, self.hub.keyring, self.shop_id
        done, after = 0, None
        with self.hub.sessions() as session:
            while True:
                rows = repository.read_window(
                    session,
                    repository.Window(shop_id, category, None, None, after, PAGE + 1),
                )
                more = len(rows) > PAGE
                rows = rows[:PAGE]
                records: list[dict[str, Any]] = []
                if rows:
                    current = keyring.cipher(session, shop_id)
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
                        records.append(minimise(values, self.fields, current, self.scope))
                done += len(records)
                if sink is not None:
                    sink.extend(records)
                if not more:
                    return done
                after = (rows[-1][1], rows[-1][0])

    def plain(self, sink: list[dict[str, Any]] | None = None) -> int:
        """The same rows from the plaintext table: fetch, decode, minimise."""
        category, shop_id = Category.sales, self.shop_id
        done, after = 0, None
        with self.hub.sessions() as session:
            # minimise() takes the shop's cipher for pseudonyms (none among these fields).
            current = self.hub.keyring.cipher(session, shop_id)
            while True:
                rows = _plain_window(
                    session, repository.Window(shop_id, category, None, None, after, PAGE + 1)
                )
                more = len(rows) > PAGE
                rows = rows[:PAGE]
                records: list[dict[str, Any]] = []
                for _row_id, occurred_at, _record_key, plaintext in rows:
                    values = decode_values(category, occurred_at, bytes(plaintext))
                    records.append(minimise(values, self.fields, current, self.scope))
                done += len(records)
                if sink is not None:
                    sink.extend(records)
                if not more:
                    return done
                after = (rows[-1][1], rows[-1][0])


def _ingest_sales(hub: Hub, shop_id: uuid.UUID, total: int) -> None:
    """Through the ingestion service, as ``POST /v1/shops/{id}/sales`` calls it."""
    with session_scope(hub.sessions) as session:
        created = principals.create(
            session, PrincipalIn(name="bench connector", role=Role.connector, shop_ids=[shop_id])
        )
    caller = Caller(created.id, created.name, created.role, frozenset({shop_id}))
    for start in range(0, total, INGEST_BATCH):
        count = min(INGEST_BATCH, total - start)
        with session_scope(hub.sessions) as session:
            result = ingest(
                session,
                hub.keyring.cipher(session, shop_id),
                caller,
                Category.sales,
                sales_lines(count, start=start),
                policy_version=hub.authorizer.policy_version,
            )
        assert result.accepted == count, result
        assert not result.rejected, result


def _store_plaintext(hub: Hub, database_url: str, shop_id: uuid.UUID) -> int:
    """Copy ``shop_records`` into the plaintext table, each row's values opened."""
    with hub.sessions() as session:
        cipher = hub.keyring.cipher(session, shop_id)
    with psycopg.connect(libpq(database_url), autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE bench_plain_records (LIKE shop_records INCLUDING ALL); "
            "ALTER TABLE bench_plain_records RENAME COLUMN sealed TO plaintext"
        )
        stored = connection.execute(
            "SELECT id, shop_id, category, record_key, occurred_at, sealed, key_version, "
            "batch_id, ingested_at FROM shop_records WHERE shop_id = %s",
            (shop_id,),
        ).fetchall()
        with connection.transaction(), connection.cursor() as cursor:
            with cursor.copy(
                "COPY bench_plain_records (id, shop_id, category, record_key, occurred_at, "
                "plaintext, key_version, batch_id, ingested_at) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(
                    [
                        "int8",
                        "uuid",
                        "varchar",
                        "bytea",
                        "timestamptz",
                        "bytea",
                        "int4",
                        "uuid",
                        "timestamptz",
                    ]
                )
                for row_id, shop, category, record_key, occurred_at, sealed, *rest in stored:
                    plaintext = cipher.open(category, VALUES_FIELD, record_key, sealed)
                    copy.write_row(
                        (row_id, shop, category, record_key, occurred_at, plaintext, *rest)
                    )
        # Both tables freshly vacuumed and analysed, so that neither has the better plan.
        connection.execute("VACUUM ANALYZE shop_records")
        connection.execute("VACUUM ANALYZE bench_plain_records")
    return len(stored)


def run_decrypt(size: Size) -> dict[str, float]:
    total = size.pick(500, 200_000)
    rounds = size.pick(1, 5)
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as data_dir:
        hub = _open_hub(url, Path(data_dir))
        try:
            with session_scope(hub.sessions) as session:
                shop_id = shops.create(session, hub.keyring, ShopIn(name="bench shop")).id
            _ingest_sales(hub, shop_id, total)
            assert _store_plaintext(hub, url, shop_id) == total
            purpose = hub.authorizer.purposes[PURPOSE]
            reader = _Reader(hub, shop_id, purpose.fields[Category.sales], str(uuid.uuid4()))
            # A first round warms caches on both sides; it is not counted, but it
            # checks that both sides return the same records.
            sealed_out: list[dict[str, Any]] = []
            plain_out: list[dict[str, Any]] = []
            assert reader.sealed(sealed_out) == reader.plain(plain_out) == total
            assert sealed_out == plain_out, "the two tables do not hold the same records"
            del sealed_out, plain_out
            sides: dict[str, Callable[[], int]] = {"sealed": reader.sealed, "plain": reader.plain}
            rates: dict[str, list[float]] = {"sealed": [], "plain": []}
            # Alternate the two, and which goes first, so that drift hits both alike.
            for round_ in range(rounds):
                order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
                for name in order:
                    started = time.perf_counter()
                    rows = sides[name]()
                    rates[name].append(rows / (time.perf_counter() - started))
                    assert rows == total, (name, rows, total)
        finally:
            hub.close()
    sealed_rate, plain_rate = median(rates["sealed"]), median(rates["plain"])
    ratio = sealed_rate / plain_rate
    report(
        f"decrypt: {total:,} sales lines of one shop, pages of {PAGE}, fetch, decode and "
        f"minimise to {PURPOSE!r}, median of {rounds} rounds (PostgreSQL)",
        [
            ("sealed rows, opened as the gate does", f"{sealed_rate:,.0f} rows/s"),
            ("baseline: the same rows stored in plaintext", f"{plain_rate:,.0f} rows/s"),
            ("ratio", f"{ratio:.2f}  (goal >= {DECRYPT_GOAL})"),
        ],
    )
    return {
        "decrypt_sealed_rows_per_s": sealed_rate,
        "decrypt_plain_rows_per_s": plain_rate,
        "decrypt_ratio": ratio,
    }


# --- rotation --------------------------------------------------------------------------------


def _copy_postgres(
    database_url: str, shop_ids: list[uuid.UUID], wrapped: list[bytes], master_id: str
) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(libpq(database_url)) as connection, connection.cursor() as cursor:
        with cursor.copy("COPY shops (id, name, created_at) FROM STDIN") as copy:
            for shop_id in shop_ids:
                copy.write_row((shop_id, "bench shop", now))
        with cursor.copy(
            "COPY shop_keys (shop_id, version, wrapped_key, master_key_id, wrap_format, "
            "created_at) FROM STDIN"
        ) as copy:
            for shop_id, key in zip(shop_ids, wrapped, strict=True):
                copy.write_row((shop_id, 1, key, master_id, WRAP_FORMAT, now))
        connection.commit()
        cursor.execute("ANALYZE shops")
        cursor.execute("ANALYZE shop_keys")
        connection.commit()


def _insert_sqlite(
    engine: Engine, shop_ids: list[uuid.UUID], wrapped: list[bytes], master_id: str
) -> None:
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        session.execute(
            insert(Shop), [{"id": s, "name": "bench shop", "created_at": now} for s in shop_ids]
        )
        session.execute(
            insert(ShopKey),
            [
                {
                    "shop_id": s,
                    "version": 1,
                    "wrapped_key": key,
                    "master_key_id": master_id,
                    "wrap_format": WRAP_FORMAT,
                    "created_at": now,
                }
                for s, key in zip(shop_ids, wrapped, strict=True)
            ],
        )


#: Loads the shops and their wrapped data keys: (shop ids, wrapped keys, master id).
Loader = Callable[[list[uuid.UUID], list[bytes], str], None]


@dataclass(frozen=True)
class _Rotated:
    seconds: float
    in_memory_seconds: float
    batches: list[float]


def _measure_rotation(hub: Hub, count: int, load: Loader) -> _Rotated:
    keyring = hub.keyring
    provider = keyring.provider
    assert isinstance(provider, LocalKeyProvider), provider
    shop_ids = [uuid.uuid4() for _ in range(count)]
    provider.create_shop_keys(shop_ids)
    with hub.sessions() as session:
        old = KeyRing.active_master_id(session)
    data_keys = [new_data_key() for _ in shop_ids]
    wrapped = [keyring.wrap(s, 1, key, old) for s, key in zip(shop_ids, data_keys, strict=True)]
    load(shop_ids, wrapped, old)

    # Baseline: what the rotation does to each key, on rows in memory (re-wrapped
    # under the same master, as the new one does not exist yet: the same work).
    rows = [
        ShopKey(shop_id=s, version=1, wrapped_key=w, master_key_id=old, wrap_format=WRAP_FORMAT)
        for s, w in zip(shop_ids, wrapped, strict=True)
    ]
    started = time.perf_counter()
    for row in rows:
        keyring.rewrap(row, old)
    in_memory = time.perf_counter() - started
    del rows

    batch_ends: list[float] = []

    def progress(done: int, total: int) -> None:
        batch_ends.append(time.perf_counter())

    started = time.perf_counter()
    rotated = rotation.rotate_master(
        hub.sessions, keyring, batch_size=ROTATION_BATCH, progress=progress
    )
    seconds = time.perf_counter() - started

    # A rotation that moved nothing would look fast: check that it did it all
    # (not with assert, which python -O would drop).
    if rotated.retiring != {old} or rotated.active == old or old in provider.master_ids():
        raise RuntimeError(f"the master key did not change: {rotated}")
    with hub.sessions() as session:
        under_new = session.scalar(
            select(func.count()).where(ShopKey.master_key_id == rotated.active)
        )
        stored = session.scalar(select(func.count()).select_from(ShopKey))
        if not under_new == stored == count:
            raise RuntimeError(f"{under_new} of {stored} keys under the new master, not {count}")
        for i in random.Random(3).sample(range(count), min(count, 200)):
            if keyring.unwrap(session.get_one(ShopKey, (shop_ids[i], 1))) != data_keys[i]:
                raise RuntimeError(f"the data key of shop {shop_ids[i]} changed on re-wrap")
    starts = [started, *batch_ends[:-1]]
    return _Rotated(seconds, in_memory, [e - s for s, e in zip(starts, batch_ends, strict=True)])


def _rotation_postgres(count: int) -> _Rotated:
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as data_dir:
        hub = _open_hub(url, Path(data_dir))
        try:
            return _measure_rotation(
                hub, count, lambda ids, wrapped, old: _copy_postgres(url, ids, wrapped, old)
            )
        finally:
            hub.close()


def _rotation_sqlite(count: int) -> _Rotated:
    with tempfile.TemporaryDirectory() as data_dir:
        hub = _open_hub(f"sqlite:///{Path(data_dir) / 'cornerstore.db'}", Path(data_dir))
        try:
            return _measure_rotation(
                hub,
                count,
                lambda ids, wrapped, old: _insert_sqlite(hub.engine, ids, wrapped, old),
            )
        finally:
            hub.close()


def _rotation_row(database: str, count: int, measured: _Rotated) -> tuple[str, str]:
    batches = sorted(measured.batches)
    return (
        f"rotate_master, {database}",
        f"{measured.seconds:7.2f} s  {count / measured.seconds:9,.0f} keys/s   "
        f"batch median {median(batches) * 1000:6.1f} ms, slowest {batches[-1] * 1000:6.1f} ms",
    )


def run_rotation(size: Size) -> dict[str, float]:
    count = size.pick(500, 100_000)
    postgres = _rotation_postgres(count)
    sqlite = _rotation_sqlite(count)
    in_memory = postgres.in_memory_seconds
    report(
        f"rotation: master key of {count:,} shops, one data key each, batches of "
        f"{ROTATION_BATCH}, file key provider (no goal set)",
        [
            _rotation_row("PostgreSQL", count, postgres),
            _rotation_row("SQLite", count, sqlite),
            (
                "baseline: the same re-wraps in memory",
                f"{in_memory:7.2f} s  {count / in_memory:9,.0f} keys/s",
            ),
            (
                "ratio (rotation / in memory), PostgreSQL",
                f"{postgres.seconds / in_memory:7.1f}x",
            ),
        ],
    )
    return {
        "rotation_s": postgres.seconds,
        "rotation_keys_per_s": count / postgres.seconds,
        "rotation_in_memory_keys_per_s": count / in_memory,
        "rotation_sqlite_s": sqlite.seconds,
    }
