"""How the ``cornerstore`` command speaks: results on stdout, refusals on stderr."""

from __future__ import annotations

import sys

#: The exit status of a command that refused: bad input, or the hub cannot do it.
EXIT_REFUSED = 2


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def fail(message: str) -> int:
    """Tell the operator why, in one line, and return the exit status to end with."""
    sys.stderr.write(f"cornerstore: {message}\n")
    return EXIT_REFUSED
