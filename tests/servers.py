"""Real hub servers for the tests that need processes: ``uvicorn hub.app:serve_app``
on the test's own database and keys, as ``cornerstore serve`` runs it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx2 as httpx
import psutil

from hub.runtime import Hub


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    base_url: str
    pid: int

    def workers(self) -> list[psutil.Process]:
        """The worker processes under uvicorn's supervisor (none when it runs one in-process)."""
        return psutil.Process(self.pid).children()


@contextmanager
def hub_server(hub: Hub, *, workers: int = 1, **settings: str) -> Iterator[Server]:
    """A hub server process; ``settings`` become ``CORNERSTORE_*`` variables."""
    port = _free_port()
    env = dict(
        os.environ,
        CORNERSTORE_ENVIRONMENT="test",
        CORNERSTORE_DATABASE_URL=hub.settings.sqlalchemy_url,
        CORNERSTORE_DATA_DIR=str(hub.settings.data_dir),
        CORNERSTORE_TRACE_EXPORTER="none",
        **{f"CORNERSTORE_{name.upper()}": value for name, value in settings.items()},
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "hub.app:serve_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if workers > 1:
        command += ["--workers", str(workers)]
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited:\n{log.read().decode(errors='replace')}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start within 60 s")
            time.sleep(0.1)
        yield Server(base, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
