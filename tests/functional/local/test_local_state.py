"""`local.state`: a moto server's S3 objects and DynamoDB items saved to a folder and loaded into
a fresh server, as `make demo` saves its run and `python -m local.console --from-demo` loads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from alert_lambda.history import record_alert
from console.tables import alert_history_table_spec
from contracts.alert import AlertRecord
from local.stack import LocalStack
from local.state import StateError, read_state, restore_state, save_state

ALERT = AlertRecord.model_validate({
    "alert_id": "3f0c2a8e-1d5b-5c1e-9a51-0d3f5b7c9e21", "camera_id": "gate-2", "site": "port-of-entry",
    "event_type": "scene_anomaly", "severity": "high", "score": 0.31, "threshold": 0.12,
    "started_at": "2026-11-25T08:00:01Z", "frame_at": "2026-11-25T08:00:01.200Z",
    "detected_at": "2026-11-25T08:00:01.500Z", "model_version": "m-1",
})


def everything(stack: LocalStack) -> tuple[dict, dict]:
    """({(bucket, key): (bytes, content type, metadata)}, {table: sorted items}) of a stack."""
    s3, dynamodb = stack.client("s3"), stack.client("dynamodb")
    objects = {}
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=listed["Key"])
            objects[(bucket, listed["Key"])] = (got["Body"].read(), got["ContentType"], got["Metadata"])
    tables = {
        table: sorted(repr(sorted(i.items())) for i in dynamodb.scan(TableName=table)["Items"])
        for table in dynamodb.list_tables()["TableNames"]
    }
    return objects, tables


def test_saved_state_loads_into_a_fresh_server_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a stack with a snapshot, a clip, a manifest, an alert in the history table, and an extra
    # bucket and table the fresh stack does not create
    folder = tmp_path / "state"
    with LocalStack() as stack:
        monkeypatch.setenv("AWS_ENDPOINT_URL", stack.endpoint_url)
        s3, dynamodb = stack.client("s3"), stack.client("dynamodb")
        bucket = stack.names.bucket
        s3.put_object(Bucket=bucket, Key="snapshots/camera=gate-2/date=2026-11-25/a.jpg", Body=b"\xff\xd8\xff\xe0jpeg",
                      ContentType="image/jpeg", Metadata={"alert-id": ALERT.alert_id})
        s3.put_object(Bucket=bucket, Key="alerts/camera=gate-2/date=2026-11-25/x_y.mp4", Body=bytes(range(256)) * 64,
                      ContentType="video/mp4")
        s3.put_object(Bucket=bucket, Key="manifests/camera=gate-2/date=2026-11-25/manifest.jsonl",
                      Body=b'{"source-ref": "s3://vigil-archive/alerts/x_y.mp4"}\n', ContentType="application/jsonl")
        s3.create_bucket(Bucket="other-bucket")
        s3.put_object(Bucket="other-bucket", Key="k", Body=b"v")
        record_alert(ALERT, stack.names.alert_history_table)
        dynamodb.create_table(**alert_history_table_spec("extra-history"))
        dynamodb.put_item(TableName="extra-history", Item={"camera_id": {"S": "c"}, "sk": {"S": "s"},
                                                           "n": {"N": "1.5"}, "b": {"B": b"\x00\x01"},
                                                           "m": {"M": {"bs": {"BS": [b"\xff"]}}}})
        before = everything(stack)
        # WHEN it is saved, and loaded into a fresh server once the first is gone
        saved = save_state(stack, folder)
    with LocalStack(names=read_state(folder).names) as fresh:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fresh.endpoint_url)
        restored = restore_state(fresh, folder)
        # THEN every object (bytes, content type, metadata) and every item is back
        assert everything(fresh) == before
        assert (restored.objects, restored.items) == (saved.objects, saved.items) == (
            {bucket: 3, "other-bucket": 1},
            {"extra-history": 1, stack.names.alert_history_table: 1, stack.names.audit_table: 0,
             stack.names.idempotency_table: 0, stack.names.state_table: 0},
        )
        # AND the recreated table has its indexes: the console's key query by alert id finds the alert
        found = fresh.client("dynamodb").query(
            TableName="extra-history", IndexName="by-alert-id", KeyConditionExpression="alert_id = :a",
            ExpressionAttributeValues={":a": {"S": "none"}})
        assert found["Items"] == []
        history = fresh.client("dynamodb").query(
            TableName=fresh.names.alert_history_table, IndexName="by-alert-id",
            KeyConditionExpression="alert_id = :a", ExpressionAttributeValues={":a": {"S": ALERT.alert_id}})
        assert [item["alert_id"]["S"] for item in history["Items"]] == [ALERT.alert_id]


def test_saving_again_replaces_the_earlier_save(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    with LocalStack() as stack:
        stack.client("s3").put_object(Bucket=stack.names.bucket, Key="a/first", Body=b"1")
        save_state(stack, folder)
        stack.client("s3").delete_object(Bucket=stack.names.bucket, Key="a/first")
        stack.client("s3").put_object(Bucket=stack.names.bucket, Key="b/second", Body=b"2")
        save_state(stack, folder)
    assert sorted(str(p.relative_to(folder / "s3")) for p in (folder / "s3").rglob("*") if p.is_file()) == [
        "vigil-archive/b/second"]
    assert not (tmp_path / "state.partial").exists()


def test_a_folder_that_is_not_a_save_is_never_replaced(tmp_path: Path) -> None:
    # GIVEN a folder of someone's files
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    # WHEN the state is saved there THEN it refuses, and the files are untouched
    with LocalStack() as stack, pytest.raises(StateError, match="holds no saved state"):
        save_state(stack, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_no_saved_state_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StateError) as error:
        read_state(tmp_path)
    assert str(error.value) == f"no saved state in {tmp_path} (state.json not found)"


def test_an_unsafe_key_is_refused(tmp_path: Path) -> None:
    with LocalStack() as stack:
        stack.client("s3").put_object(Bucket=stack.names.bucket, Key="../escape", Body=b"x")
        with pytest.raises(StateError, match="cannot be saved as a file"):
            save_state(stack, tmp_path / "state")
    assert not (tmp_path / "escape").exists()
