"""``cornerstore-consumers``: the warehouse, the two consumers, and the demo loop, each a process.

    cornerstore-consumers warehouse --port 8101 --db warehouse.db
    CORNERSTORE_API_KEY=… cornerstore-consumers replenishment --port 8102 \\
        --data replenishment --warehouse http://127.0.0.1:8101
    CORNERSTORE_API_KEY=… cornerstore-consumers lender --port 8103 --data lender
    cornerstore-consumers loop          # all of them around a demo hub: what `make consumers` runs

A consumer's API key comes from ``CORNERSTORE_API_KEY`` (and the hub from
``CORNERSTORE_HUB_URL``), never from the command line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI


def _serve(app: FastAPI, port: int) -> int:
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    return 0


def _public_url(args: argparse.Namespace) -> str:
    return str(args.public_url or f"http://127.0.0.1:{args.port}")


def warehouse(args: argparse.Namespace) -> int:
    from cornerstore_consumers.warehouse.app import create_app, load_catalogue

    name, items = load_catalogue(args.catalogue)
    return _serve(create_app(args.db, name=name, stock=items), args.port)


def replenishment(args: argparse.Namespace) -> int:
    from cornerstore_consumers.replenishment.app import create_app
    from cornerstore_consumers.runtime import ConsumerSettings

    settings = ConsumerSettings.from_env(_public_url(args), args.data)
    return _serve(create_app(settings, args.warehouse), args.port)


def lender(args: argparse.Namespace) -> int:
    from cornerstore_consumers.lender.app import create_app
    from cornerstore_consumers.runtime import ConsumerSettings

    settings = ConsumerSettings.from_env(_public_url(args), args.data)
    return _serve(create_app(settings), args.port)


def loop(args: argparse.Namespace) -> int:
    from cornerstore_consumers.loop import run

    return run(args.data, shops=args.shops, days=args.days)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="cornerstore-consumers", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)

    store = commands.add_parser("warehouse", help="the reference warehouse")
    store.add_argument("--port", type=int, default=8101)
    store.add_argument("--db", type=Path, default=Path("warehouse.db"))
    store.add_argument(
        "--catalogue", type=Path, help="a JSON catalogue (default: the demo hub's SKUs)"
    )
    store.set_defaults(run=warehouse)

    for name, port, run in (("replenishment", 8102, replenishment), ("lender", 8103, lender)):
        consumer = commands.add_parser(name, help=f"the {name} consumer")
        consumer.add_argument("--port", type=int, default=port)
        consumer.add_argument("--data", type=Path, default=Path(name), help="its own files")
        consumer.add_argument(
            "--public-url", help="where the hub reaches it (default: http://127.0.0.1:PORT)"
        )
        if name == "replenishment":
            consumer.add_argument("--warehouse", default="http://127.0.0.1:8101")
        consumer.set_defaults(run=run)

    walk = commands.add_parser("loop", help="walk the loop around a demo hub, printing each step")
    walk.add_argument("--data", type=Path, default=Path("cornerstore-consumers-demo"))
    walk.add_argument("--shops", type=int, default=5)
    walk.add_argument("--days", type=int, default=120)
    walk.set_defaults(run=loop)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Each request's line says nothing the consumer's own log does not.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
