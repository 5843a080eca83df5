"""``make consumers``: a demo hub, the warehouse and both consumers, each its own process,
and the walk around them (:mod:`cornerstore_consumers.walk`).

Everything lives under one folder (``cornerstore-consumers-demo`` by
default), made afresh at each run: the hub's SQLite database and keys, the
warehouse's database, each consumer's records and state, and every
process's log. The hub is the demo's (``cornerstore demo``), so this needs
the hub installed beside the consumers, as ``make install`` does; the
consumers themselves speak only HTTP to it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2 as httpx

from cornerstore_consumers.walk import Parties, StepFailed, Walk, say, wait_for

#: The file that marks a folder as the demo's own, to be emptied at the next run.
MARKER = ".cornerstore-consumers-demo"
#: A hub's first start loads the demo data: allow it time.
HUB_START_SECONDS = 300.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _healthy(url: str) -> bool | None:
    try:
        return True if httpx.get(f"{url}/healthz", timeout=1).status_code == 200 else None
    except httpx.TransportError:
        return None


@contextmanager
def process(
    name: str, command: list[str], logs: Path, env: dict[str, str], url: str, *, seconds: float
) -> Iterator[str]:
    """A process answering ``/healthz`` at ``url``, its output in ``logs/NAME.log``."""
    log = (logs / f"{name}.log").open("wb")
    child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:

        def up() -> bool | None:
            if child.poll() is not None:
                raise StepFailed(f"{name} exited; see {logs / f'{name}.log'}")
            return _healthy(url)

        wait_for(f"{name} to start", up, seconds=seconds)
        yield url
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
        log.close()


def _cornerstore() -> str:
    beside = Path(sys.executable).parent / "cornerstore"
    found = str(beside) if beside.exists() else shutil.which("cornerstore")
    if found is None:
        raise StepFailed("the hub's `cornerstore` command is not installed: run `make install`")
    return found


@contextmanager
def consumers(
    data: Path, hub: str, *, replenisher_key: str, lender_key: str
) -> Iterator[tuple[str, str, str]]:
    """The warehouse, the replenisher and the lender around ``hub``: their URLs.

    Each keeps its files under ``data`` (``warehouse.db``, ``replenishment/``,
    ``lender/``) and writes its log to ``data/logs``.
    """
    logs = data / "logs"
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith("CORNERSTORE_")}
    me = [sys.executable, "-m", "cornerstore_consumers"]
    ports = [_free_port() for _ in range(3)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    to_hub = dict(base, CORNERSTORE_HUB_URL=hub)
    with ExitStack() as stack:
        for name, command, env, url in (
            ("warehouse", ["--db", str(data / "warehouse.db")], base, urls[0]),
            (
                "replenishment",
                ["--data", str(data / "replenishment"), "--warehouse", urls[0]],
                dict(to_hub, CORNERSTORE_API_KEY=replenisher_key),
                urls[1],
            ),
            (
                "lender",
                ["--data", str(data / "lender")],
                dict(to_hub, CORNERSTORE_API_KEY=lender_key),
                urls[2],
            ),
        ):
            port = url.rsplit(":", 1)[1]
            stack.enter_context(
                process(name, [*me, name, "--port", port, *command], logs, env, url, seconds=60)
            )
        yield urls[0], urls[1], urls[2]


def fresh(data: Path) -> None:
    """Empty ``data`` for a new run, if it is a folder an earlier run made (or none at all)."""
    if data.exists() and any(data.iterdir()):
        if not (data / MARKER).exists():
            raise StepFailed(f"{data} holds files this demo did not make: name another --data")
        shutil.rmtree(data)
    # The hub's log holds the demo's keys, as `cornerstore demo` prints them: this user's alone.
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    (data / MARKER).write_text("made by `cornerstore-consumers loop`; emptied at each run\n")


@contextmanager
def demo(data: Path, *, shops: int, days: int) -> Iterator[Parties]:
    """A demo hub and the three processes around it, over fresh files under ``data``."""
    fresh(data)
    logs = data / "logs"
    logs.mkdir(mode=0o700)
    keys_file = data / "keys.json"
    port = _free_port()
    hub_env = {k: v for k, v in os.environ.items() if not k.startswith("CORNERSTORE_")}
    hub_env.update(
        CORNERSTORE_ENVIRONMENT="development",
        CORNERSTORE_DATA_DIR=str(data / "hub"),
        # The consumers listen on this machine: let webhooks reach it, here only.
        CORNERSTORE_WEBHOOK_PRIVATE_HOSTS='["127.0.0.1"]',
    )
    command = [_cornerstore(), "demo", "--reset", "--shops", str(shops), "--days", str(days)]
    command += ["--port", str(port), "--keys-file", str(keys_file)]
    url = f"http://127.0.0.1:{port}"
    with process("hub", command, logs, hub_env, url, seconds=HUB_START_SECONDS) as hub:
        keys = json.loads(keys_file.read_text())
        replenisher_key = keys["consumers"]["replenishment"]
        lender_key = keys["consumers"]["credit-assessment"]
        with consumers(data, hub, replenisher_key=replenisher_key, lender_key=lender_key) as (
            warehouse,
            replenishment,
            lender,
        ):
            yield Parties(
                hub=hub,
                warehouse=warehouse,
                replenishment=replenishment,
                lender=lender,
                admin_key=keys["admin"],
                replenisher_key=replenisher_key,
                lender_key=lender_key,
            )


def run(data: Path, *, shops: int, days: int) -> int:
    started = time.monotonic()
    say(f"starting a demo hub ({shops} shops, {days} days), the warehouse and two consumers")
    say(f"  files and logs under {data}/")
    try:
        with demo(data, shops=shops, days=days) as parties:
            say(f"  hub {parties.hub}  warehouse {parties.warehouse}")
            say(f"  replenisher {parties.replenishment}  lender {parties.lender}")
            walk = Walk(parties)
            try:
                walk.walk()
            finally:
                walk.close()
    except StepFailed as exc:
        sys.stderr.write(f"stopped: {exc}\n")
        return 1
    say(f"the loop took {time.monotonic() - started:.0f} s")
    return 0
