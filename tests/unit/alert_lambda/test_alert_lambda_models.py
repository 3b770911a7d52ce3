"""alert_lambda.models and the handler's failure reasons: the typed Kinesis record."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from alert_lambda.handler import failure_reason
from alert_lambda.models import AlertKinesisRecord
from contracts.alert import AlertRecord

RECORDED_EVENT = Path(__file__).resolve().parents[2] / "events" / "kinesis_alerts_event.json"


@pytest.fixture
def recorded_records() -> list[dict]:
    return json.loads(RECORDED_EVENT.read_text())["Records"]


def with_data(record: dict, data: bytes) -> dict:
    changed = copy.deepcopy(record)
    changed["kinesis"]["data"] = base64.b64encode(data).decode()
    return changed


def test_recorded_records_parse_into_alert_records(recorded_records):
    parsed = [AlertKinesisRecord.model_validate(r) for r in recorded_records]
    assert [type(p.kinesis.data) for p in parsed] == [AlertRecord, AlertRecord]
    assert [(p.kinesis.data.camera_id, p.kinesis.data.severity.value) for p in parsed] == [
        ("cam-lobby-01", "high"),
        ("cam-gate-03", "critical"),
    ]
    assert parsed[0].kinesis.data == AlertRecord.model_validate_json(
        base64.b64decode(recorded_records[0]["kinesis"]["data"])
    )


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda alert: b"\x00\x01 binary", "kinesis.data: Invalid JSON: expected value at line 1 column 1"),
        (
            lambda alert: json.dumps({**alert, "schema_version": "3"}).encode(),
            "kinesis.data.schema_version: Input should be '1' or '2'",
        ),
        (
            lambda alert: json.dumps({k: v for k, v in alert.items() if k != "site"}).encode(),
            "kinesis.data.site: Field required",
        ),
        (
            lambda alert: json.dumps({**alert, "severity": "apocalyptic"}).encode(),
            "kinesis.data.severity: Input should be 'low', 'medium', 'high' or 'critical'",
        ),
        (
            lambda alert: json.dumps({**alert, "extra": 1}).encode(),
            "kinesis.data.extra: Extra inputs are not permitted",
        ),
    ],
    ids=["not_json", "schema_version", "missing_field", "bad_severity", "extra_field"],
)
def test_poison_data_fails_validation_with_a_one_line_reason(recorded_records, mutate, reason):
    alert = json.loads(base64.b64decode(recorded_records[0]["kinesis"]["data"]))
    with pytest.raises(ValidationError) as info:
        AlertKinesisRecord.model_validate(with_data(recorded_records[0], mutate(alert)))
    # The batch processor recognises validation errors of its model by the error's title.
    assert info.value.title == "AlertKinesisRecord"
    assert failure_reason(info.value) == reason


def test_failure_reason_of_other_errors_names_the_type():
    assert failure_reason(RuntimeError("topic not found")) == "RuntimeError: topic not found"
