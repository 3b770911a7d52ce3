"""A camera that goes silent raises `camera_tamper` / `no_signal`: the worker process as on Fargate,
its scene (tamper on) read live from the state table, a KVS stream that never sends a fragment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from worker_fake_endpoint import FakeEndpoint

from contracts.alert import AlertRecord
from contracts.camera_scene import CameraScene
from contracts.camera_scene_item import put_scene
from kvs.local_media import LocalKvsMedia
from local.stack import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[3]


def alerts_on(stack: LocalStack) -> list[AlertRecord]:
    kinesis = stack.client("kinesis")
    iterator = kinesis.get_shard_iterator(
        StreamName=stack.names.alert_stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return [AlertRecord.model_validate_json(r["Data"]) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]


@pytest.mark.timeout(90)
def test_a_silent_camera_raises_one_no_signal_tamper_alert(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    # GIVEN a camera whose live scene turns tamper detection on (1 s of silence to alert)
    scene = CameraScene.model_validate({"tamper": {"enabled": True, "min_duration_s": 1.0}})
    put_scene(local_stack.client("dynamodb"), local_stack.names.state_table, "cam-1", scene, 0, "test")
    log = tmp_path / "worker.log"
    with LocalKvsMedia() as kvs:
        stream = f"vigil-{uuid.uuid4().hex[:8]}"
        kvs.stream(stream)  # a stream that never gets a fragment
        env = {
            **os.environ, **local_stack.env(), **kvs.env(),
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": fake_endpoint.url, "PYTHONPATH": str(REPO_ROOT),
        }  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "-m", "worker", "--camera-id", "cam-1", "--site", "hq", "--source", f"kvs://{stream}"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
        )  # fmt: skip
        try:
            # WHEN it reads the stream long enough to call the camera silent (the reader's 10 s) and more
            deadline = time.monotonic() + 60
            while not (alerts := alerts_on(local_stack)):
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
            time.sleep(2.0)  # a second alert would come now, if the episode alerted more than once
            alerts = alerts_on(local_stack)
        finally:
            process.terminate()
            process.wait(20)

    # THEN exactly one camera_tamper alert, no_signal, notified whatever the schedule
    assert [(a.camera_id, a.event_type, a.tamper, a.notify) for a in alerts] == [
        ("cam-1", "camera_tamper", "no_signal", True)
    ], log.read_text()[-3000:]
