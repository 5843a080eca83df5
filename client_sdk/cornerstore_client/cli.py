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
from urllib.parse import urlsplit

import httpx2 as httpx

from cornerstore_client.errors import VerificationError
from cornerstore_client.verify import verify_receipt


def _jwks(source: str) -> Any:
    """The key set from a file, an https URL, or plain http on this machine only: a key set
    fetched in the clear could be anyone's, and would make their receipts "verified"."""
    parts = urlsplit(source)
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("refusing a key set over plain http: use https, or a file")
    if parts.scheme in ("https", "http"):
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
