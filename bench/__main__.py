"""``python -m bench {all,ingest,authz,read,decrypt,rotation,appends,proofs,verify,propagation,
consent_writes,consent_checks,soak,console,analytics,consumers,stream} [--smoke]``."""

from __future__ import annotations

import argparse
import json
import sys

from bench import (
    analytics,
    audit_appends,
    audit_proofs,
    audit_verify,
    authz,
    consent,
    console,
    consumers,
    ingest,
    keys,
    read,
    soak,
    stream,
)
from bench.common import Size

BENCHMARKS = {
    "ingest": ingest.run,
    "authz": authz.run,
    "read": read.run,
    "decrypt": keys.run_decrypt,
    "rotation": keys.run_rotation,
    "appends": audit_appends.run_appends,
    "proofs": audit_proofs.run_proofs,
    "verify": audit_verify.run_verify,
    "propagation": consent.run_propagation,
    "consent_writes": consent.run_writes,
    "consent_checks": consent.run_checks,
    "soak": soak.run,
    "console": console.run,
    "analytics": analytics.run,
    "consumers": consumers.run,
    "stream": stream.run,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("which", choices=["all", *BENCHMARKS])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check they still run")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    size = Size(smoke=args.smoke)
    figures: dict[str, float] = {}
    for name, run in BENCHMARKS.items():
        if args.which in ("all", name):
            figures.update(run(size))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
