"""The full check of the log, started from the API or the console and followed as it goes."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from audit import service as audit
from audit import verification
from cornerstore.db import utcnow
from cornerstore.models.audit import AuditEntry, AuditVerification
from tests.factories import Actor, World, sale
from tests.test_web_console import sign_in


def _finished(auditor: Actor, location: str) -> dict[str, Any]:
    """Follow a run at its ``Location`` until it has finished (it works in another thread)."""
    deadline = time.monotonic() + 60
    while True:
        answer = auditor.get(location)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["status"] != "running":
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def _log_of(world: World, batches: int) -> int:
    shop = world.shop()
    for batch in range(batches):
        world.ingest(shop, "sales", [sale(batch)])
    with world.hub.sessions() as session:
        return audit.head_seq(session)


def test_an_auditor_verifies_the_whole_log_through_the_api(world: World) -> None:
    auditor = world.principal("auditor")
    entries = _log_of(world, 3)

    started = auditor.post("/v1/audit/verifications")

    assert started.status_code == 202, started.text
    assert started.json()["entries"] == entries
    done = _finished(auditor, started.headers["Location"])
    assert (done["status"], done["percent"], done["entries"]) == ("passed", 100, entries)
    assert done["first_bad_seq"] is None
    assert done["finished_at"] is not None


def test_the_full_check_names_the_first_altered_entry(world: World) -> None:
    entries = _log_of(world, 4)
    with world.hub.engine.begin() as connection:
        connection.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(reason="x"))
    auditor = world.principal("auditor")

    started = auditor.post("/v1/audit/verifications")
    done = _finished(auditor, started.headers["Location"])

    assert done["status"] == "failed"
    assert done["first_bad_seq"] == 3
    assert "entry 3" in done["problem"]
    assert entries > 3


def test_asking_again_while_a_check_works_joins_it(world: World) -> None:
    _log_of(world, 2)
    auditor = world.principal("auditor")
    with world.hub.sessions() as session, session.begin():
        working, new = verification.start(session, None)
    assert new

    again = auditor.post("/v1/audit/verifications")

    assert again.status_code == 202
    assert again.json()["id"] == str(working.id)
    assert again.json()["status"] == "running"


def test_a_check_whose_process_died_is_reported_interrupted_and_a_new_one_starts(
    world: World,
) -> None:
    _log_of(world, 2)
    auditor = world.principal("auditor")
    with world.hub.sessions() as session, session.begin():
        lost, _ = verification.start(session, None)
    # Its process stopped writing a heartbeat longer ago than a working run ever goes quiet.
    with world.hub.engine.begin() as connection:
        connection.execute(
            update(AuditVerification)
            .where(AuditVerification.id == lost.id)
            .values(heartbeat_at=utcnow() - verification.STALE_AFTER - timedelta(seconds=1))
        )

    shown = auditor.get(f"/v1/audit/verifications/{lost.id}").json()
    fresh = auditor.post("/v1/audit/verifications")

    assert shown["status"] == "interrupted"
    assert "stopped" in shown["problem"]
    assert fresh.json()["id"] != str(lost.id)
    assert _finished(auditor, fresh.headers["Location"])["status"] == "passed"
    assert auditor.get(f"/v1/audit/verifications/{lost.id}").json()["status"] == "interrupted"


def test_only_auditors_start_or_follow_a_check(world: World) -> None:
    shop = world.shop()
    started = world.principal("auditor").post("/v1/audit/verifications")
    location = started.headers["Location"]

    for stranger in (shop.keeper, world.consumer(), world.admin):
        assert stranger.post("/v1/audit/verifications").status_code in (403, 404)
        assert stranger.get(location).status_code in (403, 404)
    _finished(world.principal("auditor"), location)


def test_an_unknown_check_is_a_404_and_the_latest_is_the_newest(world: World) -> None:
    auditor = world.principal("auditor")
    missing = "/v1/audit/verifications/00000000-0000-4000-8000-000000000000"

    assert auditor.get(missing).status_code == 404
    assert auditor.get("/v1/audit/verifications/latest").status_code == 404
    started = auditor.post("/v1/audit/verifications")
    assert auditor.get("/v1/audit/verifications/latest").json()["id"] == started.json()["id"]
    _finished(auditor, started.headers["Location"])


def test_progress_runs_through_the_chain_then_the_tree(world: World) -> None:
    entries = _log_of(world, 5)
    told: list[tuple[int, int]] = []

    with world.hub.sessions() as session:
        report = audit.verify(
            session, batch=2, progress=lambda done, total: told.append((done, total))
        )

    assert report.ok
    assert {total for _, total in told} == {2 * entries}
    done = [step for step, _ in told]
    assert done == sorted(done)
    assert done[-1] == 2 * entries
    # Both passes report as they go, not only at their ends.
    assert any(0 < step < entries for step in done)
    assert any(entries < step < 2 * entries for step in done)


def test_the_console_shows_a_working_check_and_follows_it_to_its_end(world: World) -> None:
    sign_in(world, world.principal("auditor").id)
    entries = _log_of(world, 2)
    with world.hub.sessions() as session, session.begin():
        run, _ = verification.start(session, None)

    working = world.client.get(f"/console/verifications/{run.id}")
    verification.work(world.hub.sessions, run.id)  # what the run's thread does
    finished = world.client.get(f"/console/verifications/{run.id}")

    assert "<progress" in working.text
    assert 'hx-trigger="every 1s"' in working.text
    assert 'data-status="running"' in working.text
    assert 'data-status="passed"' in finished.text
    assert "<progress" not in finished.text
    assert "every 1s" not in finished.text
    assert f"All {entries} entries verified" in finished.text


def test_the_consoles_button_needs_the_sessions_csrf_token(world: World) -> None:
    _log_of(world, 1)
    auditor = world.principal("auditor")
    signed_in = sign_in(world, auditor.id)

    forged = world.client.post("/console/verifications")
    started = world.client.post("/console/verifications", headers={"X-CSRF-Token": signed_in.csrf})

    assert forged.status_code == 403
    assert started.status_code == 200
    assert 'id="verification"' in started.text
    _finished(auditor, "/v1/audit/verifications/latest")
