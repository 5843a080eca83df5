"""A background job run every few seconds on a daemon thread: checkpoints, webhooks, expiries."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from opentelemetry.instrumentation.utils import suppress_instrumentation

_log = logging.getLogger(__name__)


class Poller:
    """Runs ``work(stopping)`` every ``interval`` seconds until stopped.

    ``work`` may watch ``stopping`` to end a long round early. A failed round
    is logged by its exception's type only (a database error's text can hold
    statement parameters) and the next round runs as usual. Rounds run
    untraced: a poll several times a second would bury requests' traces in
    root spans of its own.
    """

    def __init__(
        self,
        name: str,
        work: Callable[[threading.Event], object],
        *,
        interval: float,
        join_timeout: float = 10.0,
    ) -> None:
        self._name = name
        self._work = work
        self._interval = interval
        self._join_timeout = join_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the round in progress, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._join_timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with suppress_instrumentation():
                    self._work(self._stop)
            except Exception as exc:
                _log.error("%s round failed: %s", self._name, type(exc).__name__)
