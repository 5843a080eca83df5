"""Running `cornerstore ...` in-process, as an operator would from a shell."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cornerstore.settings import get_settings
from hub.cli import main


@dataclass
class CliRun:
    code: int
    out: str
    err: str


Cli = Callable[..., CliRun]


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Iterator[Cli]:
    """Run `cornerstore ...` in-process in a clean operator shell (set CORNERSTORE_* first)."""
    for name in list(os.environ):
        if name.startswith("CORNERSTORE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> CliRun:
        get_settings.cache_clear()
        capsys.readouterr()
        try:
            code = main(list(argv))
        finally:
            get_settings.cache_clear()
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    get_settings.cache_clear()
    yield run
    get_settings.cache_clear()
