"""AlertSpool: bounded, ordered, one entry per alert id, and durable across a reopen of its directory."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts.alert import AlertRecord, Severity, make_alert_id
from worker.spool import REJECTED_DIR, AlertSpool

T0 = datetime(2026, 11, 25, 14, 45, 7, 123000, tzinfo=UTC)


def make_alert(n: int, camera_id: str = "cam-1") -> AlertRecord:
    started_at = T0 + timedelta(seconds=n)
    return AlertRecord(
        alert_id=make_alert_id(camera_id, "scene_anomaly", started_at),
        camera_id=camera_id,
        site="hq",
        event_type="scene_anomaly",
        severity=Severity.MEDIUM,
        score=2.0 + n,
        threshold=1.0,
        started_at=started_at,
        frame_at=started_at,
        detected_at=started_at + timedelta(seconds=0.3),
        model_version="m-1",
    )


def test_alerts_survive_a_reopen_in_order(tmp_path: Path):
    # GIVEN three alerts spooled on disk, the middle one already sent
    alerts = [make_alert(n) for n in range(3)]
    spool = AlertSpool(tmp_path, max_alerts=10)
    assert [spool.add(alert) for alert in alerts] == [True, True, True]
    spool.remove({alerts[1].alert_id})

    # WHEN the process restarts and opens the same directory
    reopened = AlertSpool(tmp_path, max_alerts=10)

    # THEN the two unsent alerts are there, oldest first, and new ones queue after them
    assert reopened.oldest(10) == [alerts[0], alerts[2]]
    assert reopened.recovered == 2
    reopened.add(make_alert(3))
    assert reopened.oldest(10) == [alerts[0], alerts[2], make_alert(3)]
    assert sorted(path.name[21:] for path in tmp_path.glob("*.json")) == sorted(
        f"{a.alert_id}.json" for a in (alerts[0], alerts[2], make_alert(3))
    )


def test_the_same_alert_is_kept_once(tmp_path: Path):
    spool = AlertSpool(tmp_path)

    assert (spool.add(make_alert(0)), spool.add(make_alert(0))) == (True, True)

    assert (len(spool), len(list(tmp_path.glob("*.json")))) == (1, 1)


@pytest.mark.parametrize("on_disk", [True, False], ids=["directory", "memory"])
def test_overflow_is_refused_loudly_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, on_disk: bool
):
    # GIVEN a spool that holds two alerts and is full
    spool = AlertSpool(tmp_path if on_disk else None, max_alerts=2)
    spool.add(make_alert(0))
    spool.add(make_alert(1))

    # WHEN a third arrives
    with caplog.at_level(logging.ERROR, logger="worker.spool"):
        kept = spool.add(make_alert(2))

    # THEN it is refused, counted, and its whole JSON is in an ERROR line
    assert (kept, spool.overflowed, len(spool)) == (False, 1, 2)
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line.startswith("spool FULL camera=cam-1: 2 alert(s) waiting, limit 2")
    assert line.endswith(f"alert={make_alert(2).model_dump_json()}")


def test_unreadable_files_are_moved_aside_not_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    # GIVEN a spool directory with a good file, a truncated one, and a half-written temporary file
    AlertSpool(tmp_path).add(make_alert(0))
    truncated = tmp_path / f"{2:020d}-{make_alert(1).alert_id}.json"
    truncated.write_text(make_alert(1).model_dump_json()[:40])
    (tmp_path / f"{3:020d}-x.tmp").write_text("{")

    # WHEN it is opened
    with caplog.at_level(logging.ERROR, logger="worker.spool"):
        spool = AlertSpool(tmp_path)

    # THEN the good alert is queued, the truncated file is in rejected/ (with an ERROR), the temporary gone
    assert spool.oldest(10) == [make_alert(0)]
    assert [p.name for p in (tmp_path / REJECTED_DIR).iterdir()] == [truncated.name]
    assert not list(tmp_path.glob("*.tmp"))
    assert spool.rejected == 1 and "moved to" in caplog.text


def test_reject_keeps_the_alert_in_the_rejected_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    spool = AlertSpool(tmp_path)
    spool.add(make_alert(0))

    with caplog.at_level(logging.ERROR, logger="worker.spool"):
        spool.reject(make_alert(0), "Kinesis refused it")

    [kept] = list((tmp_path / REJECTED_DIR).iterdir())
    assert AlertRecord.model_validate(json.loads(kept.read_text())) == make_alert(0)
    assert (len(spool), spool.rejected) == (0, 1)
    assert f"alert={make_alert(0).model_dump_json()}" in caplog.text


def test_an_unwritable_directory_keeps_the_alert_in_memory_with_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    # GIVEN a spool whose directory has gone (a plain file now stands in its place: even root cannot write)
    directory = tmp_path / "spool"
    spool = AlertSpool(directory)
    directory.rename(tmp_path / "gone")
    directory.write_text("not a directory")

    # WHEN an alert arrives
    with caplog.at_level(logging.ERROR, logger="worker.spool"):
        kept = spool.add(make_alert(0))

    # THEN it is still queued (memory), and the ERROR line says a restart would lose it
    assert (kept, spool.oldest(10), spool.write_errors) == (True, [make_alert(0)], 1)
    assert "kept in memory only, a restart would lose it" in caplog.text


def test_max_alerts_must_be_positive():
    with pytest.raises(ValueError, match="max_alerts must be at least 1"):
        AlertSpool(None, max_alerts=0)
