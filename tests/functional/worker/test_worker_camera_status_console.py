"""The worker's camera status, end to end: a worker on real H.264, the fake endpoint and a moto
server keeps its camera's status item up to date, and the console's camera listing
(`console.cameras`) shows the camera with its last analysed frame, lag, alerts today, model version
and threshold, while it runs and after it stopped."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from worker_fake_endpoint import MODEL_VERSION, THRESHOLD, FakeEndpoint

from alert_lambda.history import record_alert
from console.access import SiteAccess
from console.cameras import CameraRow, CameraStatus, camera_row, read_statuses
from console.store import AlertStore
from contracts.alert import AlertRecord
from local.stack import LocalStack
from worker.config import WorkerConfig
from worker.pipeline import build_worker


def alerts_on_stream(stack: LocalStack) -> list[AlertRecord]:
    kinesis = stack.client("kinesis")
    iterator = kinesis.get_shard_iterator(
        StreamName=stack.names.alert_stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return [AlertRecord.model_validate_json(r["Data"]) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]


def to_ms(value: datetime) -> datetime:
    """As the item stores it: ISO with milliseconds."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def test_console_lists_the_camera_the_worker_analysed(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, make_video: Callable[..., Path]
) -> None:
    # GIVEN a 6 s camera clip (10 fps) with an intruder in frames 10..30, played live at 2x by a worker
    # that writes its status every 0.3 s
    video = make_video("lobby.mp4", 60, intruder=(10, 30))
    config = WorkerConfig(camera_id="lobby-1", site="hq", source=str(video), speed=2.0, retry_base_s=0.01,
                          camera_status={"interval_s": 0.3})
    dynamodb, names = local_stack.client("dynamodb"), local_stack.names
    access = SiteAccess.parse("hq")
    worker = build_worker(config, worker_id="task-1")

    # WHEN it runs, the console's listing is read while it analyses
    worker.start()
    seen_running: list[CameraStatus] = []
    while worker.running():
        statuses, _ = read_statuses(dynamodb, names.state_table, access)
        seen_running += [s for s in statuses if s.model_version is not None and s.state == "analysing"]
        time.sleep(0.2)
    stats = worker.stop()
    # AND its alerts are recorded in the history table, as alert_lambda does once it has notified them
    alerts = alerts_on_stream(local_stack)
    for alert in alerts:
        record_alert(alert, names.alert_history_table)

    # THEN while it ran, the camera was listed as analysing, with the endpoint's model and threshold
    assert stats.frames_analysed > 0 and len(alerts) == 1
    assert seen_running, "no analysing status was written while the worker ran"
    first = seen_running[0]
    assert (first.camera_id, first.site, first.state, first.model_version, first.threshold, first.worker_id) == (
        "lobby-1", "hq", "analysing", MODEL_VERSION, THRESHOLD, "task-1")
    # AND once stopped, the listing shows its last analysed frame, that frame's lag, the alert of today,
    # the model version and threshold, and no "no heartbeat" however old the status gets
    now = datetime.now(UTC)
    statuses, checkpoints = read_statuses(dynamodb, names.state_table, access)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    store = AlertStore(dynamodb, names.alert_history_table, names.audit_table)
    rows = [camera_row(s, store.count_since(s.camera_id, midnight), now, checkpoint_at=checkpoints.get(s.camera_id))
            for s in statuses]
    last = worker.last_analysed
    assert last is not None
    [status] = statuses
    assert rows == [CameraRow(
        status=CameraStatus(
            camera_id="lobby-1", site="hq", state="stopped", last_frame_at=to_ms(last.captured_at),
            lag_ms=round(last.lag_s * 1000, 1), model_version=MODEL_VERSION, threshold=THRESHOLD,
            worker_id="task-1", updated_at=status.updated_at,
        ),
        alerts_today=1, stale=False, heartbeat_age_s=(now - status.updated_at).total_seconds(),
    )]
    assert alerts[0].frame_at <= last.captured_at <= status.updated_at <= now
    # AND an operator of another site does not see it
    assert read_statuses(dynamodb, names.state_table, SiteAccess.parse("port")) == ([], {})
