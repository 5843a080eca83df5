"""``cornerstore-client``: the verification helpers by hand, for an auditor or a friend.

    cornerstore-client verify-receipt receipt.jws --jwks https://hub.example/v1/keys/receipts

Exit status 0 and the artefact on standard output when it verifies; 1 and
the reason on standard error when it does not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx2 as httpx

from cornerstore_client.errors import VerificationError
from cornerstore_client.verify import verify_receipt


def _jwks(source: str) -> Any:
    if source.startswith(("https://", "http://")):
        answer = httpx.get(source, timeout=30)
        answer.raise_for_status()
        return answer.json()
    return json.loads(Path(source).read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cornerstore-client", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    receipt = commands.add_parser("verify-receipt", help="check a consent receipt (JWS)")
    receipt.add_argument("file", help="the receipt, as downloaded; - for standard input")
    receipt.add_argument("--jwks", required=True, help="the hub's receipt keys: a URL or a file")
    arguments = parser.parse_args(argv)

    text = sys.stdin.read() if arguments.file == "-" else Path(arguments.file).read_text("ascii")
    try:
        claims = verify_receipt(text, _jwks(arguments.jwks))
    except VerificationError as exc:
        sys.stderr.write(f"NOT VERIFIED: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(claims["artefact"], indent=2, ensure_ascii=False) + "\n")
    sys.stderr.write(f"verified: receipt {claims.get('jti')} signed by the hub's key\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
