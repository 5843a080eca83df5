"""A real NATS server with JetStream for the stream tests, one per test process.

Each test process starts its own ``nats-server -js`` on a free port with its
own store, so that tests in parallel never share a stream. Without the
binary the stream tests skip with the reason, except under ``CI=true``,
where that is a failure (``.ci/system-packages`` installs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import nats
import nats.js.errors
import pytest
from nats.js.api import PubAck
from pydantic import SecretStr

from connectors import stream_worker
from cornerstore.settings import Settings
from hub.runtime import Hub

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _binary() -> str | None:
    return shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").is_file() else None
    )


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = _binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and nats-server is missing: .ci/system-packages installs it")
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    port = _free_port()
    store = tmp_path_factory.mktemp("jetstream")
    command = [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("nats-server did not start") from None
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def run(work: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(_timed(work))


async def _timed(work: Callable[[], Awaitable[T]]) -> T:
    return await asyncio.wait_for(work(), timeout=60)


def publish(url: str, messages: list[tuple[str, bytes, dict[str, str]]]) -> list[PubAck]:
    """Publish each message and wait for JetStream to have it (its PubAck)."""

    async def go() -> list[PubAck]:
        client = await nats.connect(url)
        try:
            js = client.jetstream()
            return [await js.publish(s, b, headers=h) for s, b, h in messages]
        finally:
            await client.close()

    return run(go)


def delete_streams(settings: Settings) -> None:
    async def go() -> None:
        client = await nats.connect(url_of(settings))
        try:
            js = client.jetstream()
            for name in (settings.ingest_stream, settings.ingest_dead_letter_stream):
                try:
                    await js.delete_stream(name)
                except nats.js.errors.NotFoundError:
                    pass
        finally:
            await client.close()

    run(go)


def status(settings: Settings) -> stream_worker.StreamStatus:
    return run(lambda: stream_worker.status(settings))


def wait_until(check: Callable[[], bool], *, seconds: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what or check}")
        time.sleep(0.05)


def drained(settings: Settings) -> bool:
    found = status(settings)
    return found.pending == 0 and found.in_flight == 0


@contextmanager
def worker(hub: Hub) -> Iterator[None]:
    """The ingest worker, in a thread of this process, until the block ends."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            loop.run_until_complete(stream_worker.run(hub, stop))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=serve, name="ingest-worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
    assert not failure, "".join(traceback.format_exception(failure[0])) if failure else ""


def settings_with(hub: Hub, url: str, **overrides: Any) -> Settings:
    return hub.settings.model_copy(update={"nats_url": SecretStr(url), **overrides})


def url_of(settings: Settings) -> str:
    assert settings.nats_url is not None
    return settings.nats_url.get_secret_value()


@contextmanager
def worker_process(hub: Hub) -> Iterator[subprocess.Popen[bytes]]:
    """``cornerstore ingest-worker`` as an operator runs it, on the test's database and keys."""
    settings = hub.settings
    env = dict(
        os.environ,
        CORNERSTORE_ENVIRONMENT="test",
        CORNERSTORE_DATABASE_URL=settings.sqlalchemy_url,
        CORNERSTORE_DATA_DIR=str(settings.data_dir),
        CORNERSTORE_TRACE_EXPORTER="none",
        CORNERSTORE_NATS_URL=url_of(settings),
        CORNERSTORE_INGEST_ACK_WAIT_SECONDS=str(settings.ingest_ack_wait_seconds),
        CORNERSTORE_INGEST_FETCH_BATCH=str(settings.ingest_fetch_batch),
    )
    log = tempfile.TemporaryFile()
    command = [sys.executable, "-m", "hub.cli", "ingest-worker"]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)
        log.seek(0)
        output = log.read().decode(errors="replace")
        assert process.returncode in (0, -signal.SIGKILL), output
