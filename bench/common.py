"""What the benchmarks share: a scratch PostgreSQL database, a hub server process, reporting."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import psutil
from sqlalchemy.engine import make_url

from cornerstore.db import make_engine, scratch_database

POSTGRES_ADMIN_URL = os.environ.get(
    "CORNERSTORE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


#: Server processes, one a core as `cornerstore serve --workers` would run in production.
WORKERS = int(os.environ.get("CORNERSTORE_BENCH_WORKERS", os.cpu_count() or 1))


@dataclass(frozen=True)
class Size:
    smoke: bool

    def pick(self, smoke: int, full: int) -> int:
        return smoke if self.smoke else full


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database for one benchmark, dropped afterwards."""
    with scratch_database(POSTGRES_ADMIN_URL, "cornerstore_bench") as url:
        yield url


@contextmanager
def migrated_postgres() -> Iterator[str]:
    """A scratch PostgreSQL database (see :func:`scratch_postgres`) with the hub's tables."""
    # Imported here: alembic is only loaded by the benchmarks that migrate.
    from cornerstore.migrations import upgrade

    with scratch_postgres() as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield url


def libpq(database_url: str) -> str:
    """The SQLAlchemy ``database_url`` as a URL that psycopg connects to directly."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class BenchServer:
    base_url: str
    pid: int

    def worker_rss_mib(self) -> dict[int, float]:
        """Resident memory of each worker process, by pid (the server itself if it has none).

        Uvicorn's workers are spawned processes; multiprocessing's resource
        tracker, also a child, serves no request and is left out.
        """
        server = psutil.Process(self.pid)
        workers = [c for c in server.children() if "spawn_main" in " ".join(c.cmdline())]
        workers = workers or [server]
        return {worker.pid: worker.memory_info().rss / 2**20 for worker in workers}


@contextmanager
def hub_server(
    database_url: str, data_dir: Path, *, workers: int = WORKERS
) -> Iterator[BenchServer]:
    """Run the bench app (the hub plus an ungoverned baseline route) in its own process."""
    port = _free_port()
    env = dict(
        os.environ,
        CORNERSTORE_DATABASE_URL=database_url,
        CORNERSTORE_DATA_DIR=str(data_dir),
        CORNERSTORE_TRACE_EXPORTER="none",
        # Benchmarks refuse and request on purpose, far past a shop's sane limits.
        CORNERSTORE_RATE_REFUSALS_PER_MINUTE="1000000000",
        CORNERSTORE_RATE_CONSENT_REQUESTS_PER_DAY="1000000000",
    )
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.baseline_app:create",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"bench server exited:\n{log.read().decode(errors='replace')}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("bench server did not start within 30 s")
            time.sleep(0.1)
        yield BenchServer(base, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def rss_mib() -> float:
    """Resident memory of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n== {title}")
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label.ljust(width)}  {value}")
