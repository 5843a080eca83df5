"""``cornerstore ingest-worker`` and ``cornerstore ingest status|replay``: the ingest stream's hand.

The worker is its own process beside ``serve`` (as many as the stream needs:
they share one durable consumer, and each message goes to one of them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from dataclasses import asdict

from connectors import stream_worker
from cornerstore.ports import Core
from cornerstore.settings import get_settings
from hub.console import fail, say


def cmd_worker(_args: argparse.Namespace) -> int:
    from hub.runtime import Hub

    settings = get_settings()
    if settings.nats_url is None:
        return fail("set CORNERSTORE_NATS_URL to the NATS server (nats://host:4222)")
    # The worker's own lines at the configured level; the libraries' (the whole Casbin
    # policy at INFO, for one) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    for name in ("connectors", "hub"):
        logging.getLogger(name).setLevel(settings.log_level)
    hub = Hub.open(settings)
    try:
        return asyncio.run(_work(hub))
    finally:
        hub.close()


async def _work(core: Core) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Stopped, it finishes the messages in hand and answers them first.
        loop.add_signal_handler(signum, stop.set)
    await stream_worker.run(core, stop)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        found = asyncio.run(stream_worker.status(settings))
    except (stream_worker.StreamNotConfigured, stream_worker.StreamUnreachable) as exc:
        return fail(str(exc))
    if args.json:
        say(json.dumps(asdict(found)))
        return 0
    say(f"pending        {found.pending:>10}  published, not yet taken by a worker")
    say(f"in flight      {found.in_flight:>10}  taken, not yet stored")
    say(f"redelivered    {found.redelivered:>10}  delivered more than once")
    say(f"dead-lettered  {found.dead_lettered:>10}  failed; `cornerstore ingest replay` resends")
    say(f"buffered       {found.buffered_bytes:>10}  bytes in {settings.ingest_stream}")
    return 0


def cmd_replay(_args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        sent = asyncio.run(stream_worker.replay(settings))
    except (
        stream_worker.StreamNotConfigured,
        stream_worker.StreamUnreachable,
        stream_worker.ReplayStopped,
    ) as exc:
        return fail(str(exc))
    say(f"sent {sent} dead-lettered messages back to {settings.ingest_stream}")
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """ingest-worker; ingest status, replay"""
    worker = commands.add_parser(
        "ingest-worker", help="store what push connectors publish on the NATS ingest stream"
    )
    worker.set_defaults(func=cmd_worker)
    ingest = commands.add_parser("ingest", help="the NATS ingest stream").add_subparsers(
        dest="ingest", required=True
    )
    status = ingest.add_parser("status", help="pending, in flight, redelivered, dead-lettered")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    ingest.add_parser(
        "replay", help="send dead-lettered messages back to the stream, to be stored"
    ).set_defaults(func=cmd_replay)
