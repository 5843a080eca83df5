"""``python -m audit_verifier``: check the hub's audit log offline, from files alone.

    python -m audit_verifier export --export log.jsonl --checkpoint cp.txt --key KEY
    python -m audit_verifier consistency old.txt new.txt --proof proof.json --key KEY

``cornerstore audit verify-export`` and ``verify-consistency`` run the same
code. Exit status: 0 verified, 1 failed verification, 2 unreadable input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from audit_verifier import verify

EXIT_FAILED = 1
EXIT_UNREADABLE = 2


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


def _unreadable(program: str, message: str) -> int:
    sys.stderr.write(f"{program}: {message}\n")
    return EXIT_UNREADABLE


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--export", required=True, help="the JSON Lines export")
    parser.add_argument("--checkpoint", required=True, help="a signed checkpoint")
    parser.add_argument(
        "--key", required=True, action="append", help="a verifier key, or a file of them"
    )
    parser.add_argument("--origin", help="the log's name the checkpoint must carry")


def run_export(args: argparse.Namespace, program: str) -> int:
    try:
        keys = verify.load_verifier_keys(args.key)
        with open(args.checkpoint, "rb") as handle:
            checkpoint_note = handle.read()
        with open(args.export, "rb") as lines:
            report = verify.verify_export(lines, checkpoint_note, keys, origin=args.origin)
    except (OSError, ValueError) as exc:
        return _unreadable(program, str(exc))
    if not report.ok:
        where = "" if report.first_bad_index is None else f" at index {report.first_bad_index}"
        _print(f"export FAILED verification{where}: {report.problem}")
        return EXIT_FAILED
    _print(
        f"export verified: {report.entries_checked} entries match the checkpoint of size "
        f"{report.checkpoint.size} signed by {', '.join(report.signers)}"
    )
    if report.entries_not_covered:
        _print(f"{report.entries_not_covered} newer entries are not covered by this checkpoint")
    return 0


def add_consistency_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", help="the older signed checkpoint")
    parser.add_argument("new", help="the newer signed checkpoint")
    parser.add_argument(
        "--proof", required=True, help="the consistency proof, as the API returns it"
    )
    parser.add_argument(
        "--key", required=True, action="append", help="a verifier key, or a file of them"
    )
    parser.add_argument("--origin", help="the log's name both must carry")


def run_consistency(args: argparse.Namespace, program: str) -> int:
    try:
        keys = verify.load_verifier_keys(args.key)
        with open(args.old, "rb") as old, open(args.new, "rb") as new:
            old_note, new_note = old.read(), new.read()
        proof = verify.load_proof_file(args.proof)
        older, newer = verify.verify_consistency(
            old_note, new_note, proof, keys, origin=args.origin
        )
    except verify.VerificationError as exc:
        _print(f"consistency FAILED: {exc}")
        return EXIT_FAILED
    except (OSError, ValueError) as exc:
        return _unreadable(program, str(exc))
    _print(f"consistent: the log of {newer.size} entries extends the log of {older.size}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    program = "audit_verifier"
    parser = argparse.ArgumentParser(prog=f"python -m {program}", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="check an export against a signed checkpoint")
    add_export_arguments(export)
    export.set_defaults(run=run_export)
    consistency = commands.add_parser(
        "consistency", help="check that a newer checkpoint extends an older one"
    )
    add_consistency_arguments(consistency)
    consistency.set_defaults(run=run_consistency)
    args = parser.parse_args(argv)
    code: int = args.run(args, program)
    return code


if __name__ == "__main__":
    sys.exit(main())
