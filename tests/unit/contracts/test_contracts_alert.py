from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from contracts.alert import AlertRecord, make_alert_id
from contracts.inference import FrameResult

START = datetime(2026, 11, 25, 14, 0, 1, 250000, tzinfo=UTC)


def test_alert_id_is_deterministic_and_timezone_independent():
    same_instant = START.astimezone(timezone(timedelta(hours=-5)))
    assert make_alert_id("cam-1", "scene_anomaly", START) == make_alert_id("cam-1", "scene_anomaly", same_instant)
    assert make_alert_id("cam-1", "scene_anomaly", START) != make_alert_id("cam-2", "scene_anomaly", START)
    assert make_alert_id("cam-1", "scene_anomaly", START) != make_alert_id(
        "cam-1", "scene_anomaly", START + timedelta(milliseconds=1)
    )


def test_alert_serialises_times_as_utc_iso_and_round_trips():
    alert = AlertRecord(
        alert_id=make_alert_id("cam-1", "scene_anomaly", START), camera_id="cam-1", site="hq",
        event_type="scene_anomaly", severity="high", score=3.0, threshold=1.0, started_at=START,
        frame_at=START, detected_at=START, model_version="m1",
    )
    data = alert.model_dump(mode="json")
    assert data["started_at"] == "2026-11-25T14:00:01.250Z"
    assert data["schema_version"] == "1"
    assert AlertRecord.model_validate_json(alert.model_dump_json()) == alert


def test_alert_rejects_other_schema_versions_and_naive_times():
    base = {"alert_id": "a", "camera_id": "c", "site": "s", "event_type": "e", "severity": "low", "score": 1, "threshold": 1,
                "started_at": START, "frame_at": START, "detected_at": START, "model_version": "m"}
    with pytest.raises(ValidationError):
        AlertRecord(**base, schema_version="2")
    with pytest.raises(ValidationError):
        AlertRecord(**{**base, "started_at": datetime(2026, 1, 1)})


def test_frame_result_rejects_nan():
    with pytest.raises(ValidationError, match="finite"):
        FrameResult(score=float("nan"))
