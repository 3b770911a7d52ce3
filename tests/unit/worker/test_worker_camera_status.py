"""The camera status reporter: a write every period and at once on a state change, `stopped` only over
its own status, DynamoDB failures logged with the camera id and retried next period, never fatal."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from contracts.camera_status import CameraState
from kvs.reader import ReaderState
from worker.camera_status import CameraStatusReporter, LastAnalysed, camera_state

T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)
FRAME = LastAnalysed(captured_at=T0 - timedelta(seconds=1), lag_s=0.4321, model_version="m-3", threshold=0.61)


@dataclass
class FakeDynamoDB:
    """Records each PutItem; `errors` are raised by the next calls, one each."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)

    def put_item(self, **request: Any) -> dict[str, Any]:
        if self.errors:
            raise self.errors.pop(0)
        self.calls.append(request)
        return {}


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutItem"
    )


def item(state: str, at: datetime, *, frame: bool = True) -> dict[str, Any]:
    """The PutItem `Item` the reporter sends, in DynamoDB's typed form."""
    fields = {"id": {"S": "camera-status#cam-1"}, "schema_version": {"S": "1"}, "camera_id": {"S": "cam-1"},
              "site": {"S": "hq"}, "state": {"S": state}}
    if frame:
        fields |= {"last_frame_at": {"S": "2026-11-25T07:59:59.000Z"}, "lag_ms": {"N": "432.1"},
                   "model_version": {"S": "m-3"}, "threshold": {"N": "0.61"}}
    return fields | {"worker_id": {"S": "task-1"}, "updated_at": {"S": at.isoformat().replace("+00:00", ".000Z")}}


def put(state: str, at: datetime, **kwargs: Any) -> dict[str, Any]:
    return {"TableName": "vigil-state", "Item": item(state, at, **kwargs)}


def put_stopped(at: datetime, **kwargs: Any) -> dict[str, Any]:
    return put("stopped", at, **kwargs) | {
        "ConditionExpression": "attribute_not_exists(#id) OR worker_id = :me",
        "ExpressionAttributeNames": {"#id": "id"},
        "ExpressionAttributeValues": {":me": {"S": "task-1"}},
    }


def reporter(client: Any, clock: Clock, state: list[CameraState], last: list[LastAnalysed | None],
             **kwargs: Any) -> CameraStatusReporter:
    return CameraStatusReporter(
        "cam-1", "hq", table_name="vigil-state", state=lambda: state[0], last_analysed=lambda: last[0],
        interval_s=10.0, worker_id="task-1", client=client, now=clock, **kwargs,
    )  # fmt: skip


def test_writes_at_once_then_once_per_period() -> None:
    # GIVEN a reporter with a 10 s period, its camera not analysed yet
    client, clock, last = FakeDynamoDB(), Clock(), [None]
    status = reporter(client, clock, ["analysing"], last)

    # WHEN it ticks at start, a frame is analysed, then it ticks at +5 s, +10 s and +15 s
    wrote = [status.tick()]
    last[0] = FRAME
    for _ in range(3):
        clock.advance(5)
        wrote.append(status.tick())

    # THEN it wrote at start (no frame yet) and at +10 s (the frame), nothing in between
    assert wrote == [True, False, True, False]
    assert client.calls == [put("analysing", T0, frame=False), put("analysing", T0 + timedelta(seconds=10))]


def test_state_changes_are_written_at_once_and_stop_writes_stopped() -> None:
    # GIVEN a reporter that wrote the camera as analysing
    client, clock, state = FakeDynamoDB(), Clock(), ["analysing"]
    status = reporter(client, clock, state, [FRAME])
    status.tick()

    # WHEN the camera goes silent at +1 s, reconnects at +2 s, streams again at +3 s, then the worker stops
    for seconds, now in ((1, "silent"), (1, "reconnecting"), (1, "analysing")):
        clock.advance(seconds)
        state[0] = now
        status.tick()
    clock.advance(1)
    status.stop()

    # THEN each change is one write, and the last says stopped (only over this worker's own status)
    at = [T0 + timedelta(seconds=s) for s in range(5)]
    assert client.calls == [put("analysing", at[0]), put("silent", at[1]), put("reconnecting", at[2]),
                            put("analysing", at[3]), put_stopped(at[4])]


def test_dynamodb_failure_is_logged_with_the_camera_and_retried_next_period(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN DynamoDB throttles the first write and cannot be reached for the second
    client, clock, state = FakeDynamoDB(errors=[throttled()]), Clock(), ["analysing"]
    status = reporter(client, clock, state, [FRAME])
    client.errors.append(EndpointConnectionError(endpoint_url="http://dynamodb"))

    # WHEN it ticks at start, the camera goes silent at +1 s, and it ticks each second up to +21 s
    with caplog.at_level(logging.WARNING, logger="worker.camera_status"):
        wrote = [status.tick()]
        for second in range(1, 22):
            clock.advance(1)
            if second == 1:
                state[0] = "silent"
            wrote.append(status.tick())

    # THEN it did not retry before the next period (+10 s, refused again), wrote at +20 s, and said why each time
    assert [second for second, ok in enumerate(wrote) if ok] == [20]
    assert client.calls == [put("silent", T0 + timedelta(seconds=20))]
    assert [r.getMessage() for r in caplog.records] == [
        ("camera status not written camera=cam-1 state=analysing table=vigil-state (next try in 10 s): An error "
         "occurred (ProvisionedThroughputExceededException) when calling the PutItem operation: slow down"),
        ("camera status not written camera=cam-1 state=silent table=vigil-state (next try in 10 s): Could not "
         'connect to the endpoint URL: "http://dynamodb"'),
    ]
    assert (status.writes, status.failures) == (1, 2)


def test_stopped_over_another_workers_status_is_left_alone() -> None:
    # GIVEN the camera was handed over: the new owner's status fails this worker's condition
    refused = ClientError({"Error": {"Code": "ConditionalCheckFailedException", "Message": "no"}}, "PutItem")
    client, clock = FakeDynamoDB(errors=[refused]), Clock()
    status = reporter(client, clock, ["analysing"], [FRAME])

    # WHEN this worker stops THEN nothing is overwritten and it is no failure
    status.stop()
    assert (client.calls, status.failures) == ([], 0)


def test_a_failing_table_never_stops_the_reporter_thread(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a table that can never be reached, polled every 10 ms with a 20 ms period
    class Unreachable:
        def put_item(self, **request: Any) -> None:
            raise EndpointConnectionError(endpoint_url="http://dynamodb")

    status = CameraStatusReporter("cam-1", "hq", table_name="vigil-state", state=lambda: "analysing",
                                  last_analysed=lambda: None, interval_s=0.02, poll_s=0.01, client=Unreachable())
    # WHEN it runs for a while and is stopped
    with caplog.at_level(logging.WARNING, logger="worker.camera_status"):
        status.start()
        deadline = time.monotonic() + 5
        while status.failures < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        alive = status._thread.is_alive()
        status.stop()
    # THEN it kept trying (thread alive), and stopping returned: every line names the camera
    assert (alive, status.failures >= 3, status.writes) == (True, True, 0)
    assert all("camera=cam-1" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("reader_state", "stopping", "expected"),
    [
        (None, False, "analysing"),  # a file or RTSP source has no reader state
        (ReaderState.STREAMING, False, "analysing"),
        (ReaderState.CONNECTING, False, "reconnecting"),
        (ReaderState.BACKING_OFF, False, "reconnecting"),
        (ReaderState.SILENT, False, "silent"),
        (ReaderState.STOPPED, False, "stopped"),
        (ReaderState.SILENT, True, "stopped"),
    ],
)
def test_camera_state_follows_the_kvs_reader(reader_state, stopping: bool, expected: str) -> None:
    # GIVEN a running worker whose source's reader is in `reader_state`
    stop_event = threading.Event()
    if stopping:
        stop_event.set()
    source = SimpleNamespace(reader=SimpleNamespace(state=reader_state)) if reader_state else SimpleNamespace()
    worker = SimpleNamespace(stop_event=stop_event, running=lambda: True, source=source)
    # WHEN its state is read THEN it is what the Cameras page shows
    assert camera_state(worker) == expected


def test_a_worker_whose_threads_ended_is_stopped() -> None:
    worker = SimpleNamespace(stop_event=threading.Event(), running=lambda: False, source=SimpleNamespace())
    assert camera_state(worker) == "stopped"


def test_the_status_carries_the_live_scenes_revision_and_refusal() -> None:
    # GIVEN a live scene at revision 4 that refused revision 5
    client, clock = FakeDynamoDB(), Clock()
    refusal = "revision 5 refused: zones.0.polygon: a polygon needs at least 3 points, got 2"
    status = reporter(client, clock, ["analysing"], [FRAME], scene=lambda: (4, refusal))
    # WHEN it writes THEN the item says both, for the console's Cameras page
    status.write("analysing")
    assert client.calls == [{"TableName": "vigil-state", "Item": item("analysing", T0) | {
        "scene_revision": {"N": "4"}, "scene_error": {"S": refusal}}}]
