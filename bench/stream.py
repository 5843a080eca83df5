"""Stream: sales lines per second through NATS JetStream → ingest workers → PostgreSQL.

Against the HTTP batch API in the same run, on the same database: the same
lines from the same four connectors, over HTTP in batches of 500 (a till's
upload), and on the stream one event a message (a push connector) and fifty a
message (a gateway that gathers a moment's events), with as many ``cornerstore
ingest-worker`` processes as the server has workers.
Then the latency a push connector sees: from publishing one event to the
moment it is stored, readable by the shop, one message at a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2 as httpx
import nats
import nats.js.errors
import psycopg
from nats.js import JetStreamContext

from bench.common import WORKERS, Size, hub_server, libpq, percentile, report, scratch_postgres
from bench.setup import BenchShop, make_shop, migrated_admin_key, post_sales, sales_lines
from cornerstore_client import StreamSigner

GOAL = 1.0
STREAM = "CORNERSTORE_INGEST"
CONNECTORS = 4
HTTP_BATCH = 500
#: Events a message holds when a connector sends a few at a time (the stream's other shape).
BATCHED = 50
#: Messages sent before anything is timed, so that every worker is warm.
WARM = 400


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def nats_server() -> Iterator[str]:
    """A NATS server with JetStream of the benchmark's own, on a free port."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    port = _free_port()
    with tempfile.TemporaryDirectory() as store:
        process = subprocess.Popen(  # noqa: S603 (the system's nats-server)
            [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("nats-server did not start") from None
                    time.sleep(0.05)
            yield f"nats://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def ingest_workers(database_url: str, data_dir: Path, nats_url: str) -> Iterator[None]:
    env = dict(
        os.environ,
        CORNERSTORE_DATABASE_URL=database_url,
        CORNERSTORE_DATA_DIR=str(data_dir),
        CORNERSTORE_TRACE_EXPORTER="none",
        CORNERSTORE_NATS_URL=nats_url,
        CORNERSTORE_LOG_LEVEL="WARNING",
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "ingest-worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(WORKERS)
    ]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def _stored(database_url: str) -> int:
    with psycopg.connect(libpq(database_url)) as connection:
        row = connection.execute("SELECT count(*) FROM shop_records").fetchone()
    return int(row[0]) if row else 0


async def _until_taken(js: JetStreamContext) -> None:
    """Until the stream is empty: a worker acknowledges a message only once it is stored.

    Asked of NATS, not counted in the database, so that watching puts no load
    on the database being measured.
    """
    while (await js.stream_info(STREAM)).state.messages:
        await asyncio.sleep(0.002)


def _signer(client: httpx.Client, shop: BenchShop) -> StreamSigner:
    headers = {"Authorization": f"Bearer {shop.connector_key}"}
    me = client.get("/v1/principals/me", headers=headers)
    me.raise_for_status()
    signer = StreamSigner.generate()
    registered = client.post(
        f"/v1/principals/{me.json()['id']}/signing-keys",
        json={"public_key": signer.public_key},
        headers=headers,
    )
    registered.raise_for_status()
    return signer.named(registered.json()["key_id"])


async def _publish(
    url: str, messages: list[tuple[str, bytes, dict[str, str]]], *, until_stored: bool = True
) -> float:
    """Publish every message, many in flight at once, as a busy connector gateway would;
    the seconds from the first publish until the last is stored (or published)."""
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        started = time.perf_counter()
        window = 512
        for start in range(0, len(messages), window):
            await asyncio.gather(
                *(js.publish(s, b, headers=h) for s, b, h in messages[start : start + window])
            )
        if until_stored:
            await _until_taken(js)
        return time.perf_counter() - started
    finally:
        await client.close()


def _messages(
    signers: list[StreamSigner], shops: list[BenchShop], start: int, total: int, per_message: int
) -> list[tuple[str, bytes, dict[str, str]]]:
    """``total`` new sales lines, a quarter from each connector, ``per_message`` a message."""
    lines = sales_lines(total, start=start)
    share = total // CONNECTORS
    return [
        signers[c].message(
            shops[c].shop_id,
            "sales",
            chunk[0] if per_message == 1 else chunk,
            msg_id=chunk[0]["event_id"],
        )
        for c in range(CONNECTORS)
        for i in range(c * share, (c + 1) * share, per_message)
        for chunk in [lines[i : i + per_message]]
    ]


async def _until_empty(url: str) -> None:
    client = await nats.connect(url)
    try:
        await _until_taken(client.jetstream())
    finally:
        await client.close()


def _publish_when_streams_exist(
    url: str, messages: list[tuple[str, bytes, dict[str, str]]]
) -> None:
    """Publish once the first worker has made the streams, and wait until all are stored."""
    deadline = time.monotonic() + 60
    while True:
        try:
            asyncio.run(_publish(url, messages))
            return
        except nats.js.errors.NoStreamResponseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def _latencies(url: str, messages: list[tuple[str, bytes, dict[str, str]]]) -> list[float]:
    """Publish one message at a time; how long until it is stored (readable)."""
    client = await nats.connect(url)
    samples = []
    try:
        js = client.jetstream()
        for subject, body, headers in messages:
            started = time.perf_counter()
            await js.publish(subject, body, headers=headers)
            await _until_taken(js)
            samples.append(time.perf_counter() - started)
    finally:
        await client.close()
    return samples


def run(size: Size) -> dict[str, float]:
    total = size.pick(400, 40_000)
    probes = size.pick(20, 300)
    records = sales_lines(total)
    share = total // CONNECTORS
    with ExitStack() as stack:
        http_url = stack.enter_context(scratch_postgres())
        http_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        admin_key = migrated_admin_key(http_url, http_dir)
        server = stack.enter_context(hub_server(http_url, http_dir))
        client = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=120))
        shops = [make_shop(client, admin_key) for _ in range(CONNECTORS)]
        bodies = [
            (shops[c], json.dumps({"records": records[i : i + HTTP_BATCH]}).encode())
            for c in range(CONNECTORS)
            for i in range(c * share, (c + 1) * share, HTTP_BATCH)
        ]
        started = time.perf_counter()
        with ThreadPoolExecutor(CONNECTORS) as pool:
            list(pool.map(lambda sent: post_sales(client, *sent), bodies))
        http_rate = total / (time.perf_counter() - started)

        stream_url = stack.enter_context(scratch_postgres())
        stream_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        admin_key = migrated_admin_key(stream_url, stream_dir)
        server = stack.enter_context(hub_server(stream_url, stream_dir, workers=1))
        client = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=120))
        shops = [make_shop(client, admin_key) for _ in range(CONNECTORS)]
        signers = [_signer(client, shop) for shop in shops]
        url = stack.enter_context(nats_server())
        stack.enter_context(ingest_workers(stream_url, stream_dir, url))
        # A round of messages first, so that every worker has opened what it uses.
        warm = _messages(signers, shops, 0, WARM, 1)
        _publish_when_streams_exist(url, warm)
        stored = WARM
        drained: dict[int, float] = {}
        live: dict[int, float] = {}
        for per_message in (1, BATCHED):
            # Buffered while the database holds every write (as a slow one would), then
            # drained from the moment it lets go: the workers' throughput, whoever publishes.
            buffered = _messages(signers, shops, stored, total, per_message)
            with psycopg.connect(libpq(stream_url)) as held:
                held.execute("LOCK TABLE shop_records IN EXCLUSIVE MODE")
                asyncio.run(_publish(url, buffered, until_stored=False))
                started = time.perf_counter()
            asyncio.run(_until_empty(url))
            drained[per_message] = total / (time.perf_counter() - started)
            stored += total
            # Published while the workers take them, from one publishing process.
            messages = _messages(signers, shops, stored, total, per_message)
            live[per_message] = total / asyncio.run(_publish(url, messages))
            stored += total
        probe = sales_lines(probes, start=stored)
        samples = asyncio.run(
            _latencies(
                url,
                [
                    signers[0].message(shops[0].shop_id, "sales", r, msg_id=r["event_id"])
                    for r in probe
                ],
            )
        )
        # Every line once: none lost, none twice.
        if _stored(stream_url) != stored + probes:
            raise RuntimeError(f"stored {_stored(stream_url)} records, not {stored + probes}")
    single, batched = drained[1] / http_rate, drained[BATCHED] / http_rate
    p50, p99 = percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000
    report(
        f"stream: {total} sales lines from {CONNECTORS} connectors; HTTP in batches of "
        f"{HTTP_BATCH} to {WORKERS} server workers, on the stream to {WORKERS} ingest "
        "workers (PostgreSQL)",
        [
            ("HTTP batch API", f"{http_rate:,.0f} rows/s"),
            ("stream, one event a message, drained", f"{drained[1]:,.0f} rows/s"),
            ("  ratio stream / HTTP", f"{single:.2f}  (goal >= {GOAL})"),
            ("  published while taken (one publisher)", f"{live[1]:,.0f} rows/s"),
            (f"stream, {BATCHED} events a message, drained", f"{drained[BATCHED]:,.0f} rows/s"),
            ("  ratio stream / HTTP", f"{batched:.2f}  (goal >= {GOAL})"),
            ("  published while taken (one publisher)", f"{live[BATCHED]:,.0f} rows/s"),
            (f"publish → readable, p50 ({probes} events one at a time)", f"{p50:.1f} ms"),
            ("publish → readable, p99", f"{p99:.1f} ms"),
        ],
    )
    return {
        "stream_http_rows_per_s": http_rate,
        "stream_rows_per_s": drained[1],
        "stream_batched_rows_per_s": drained[BATCHED],
        "stream_live_rows_per_s": live[1],
        "stream_live_batched_rows_per_s": live[BATCHED],
        "stream_ratio": single,
        "stream_batched_ratio": batched,
        "stream_latency_p50_ms": p50,
        "stream_latency_p99_ms": p99,
    }
