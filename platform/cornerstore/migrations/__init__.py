"""Alembic migrations, and the checks the hub runs against them at start.

The scripts live in this package so that an installed hub can migrate its
database with ``cornerstore db upgrade``, with no alembic.ini to find.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

SCRIPT_LOCATION = str(Path(__file__).resolve().parent)


class NotMigrated(Exception):
    """The database is behind the code. The message names the command that fixes it."""


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def assert_migrated(engine: Engine) -> None:
    heads = set(ScriptDirectory(SCRIPT_LOCATION).get_heads())
    current = current_revisions(engine)
    if current != heads:
        known = {script.revision for script in ScriptDirectory(SCRIPT_LOCATION).walk_revisions()}
        state = "empty" if not current else f"at revision {', '.join(sorted(current))}"
        fix = (
            "run: cornerstore db upgrade"
            if current <= known
            else "it was migrated by a newer Cornerstore; run that version"
        )
        raise NotMigrated(
            f"the database is {state} but this Cornerstore needs revision "
            f"{', '.join(sorted(heads))}; {fix}"
        )
