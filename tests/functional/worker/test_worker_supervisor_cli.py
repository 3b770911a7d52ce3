"""`python -m worker` in fleet mode: $VIGIL_CAMERAS read and checked, SIGTERM stops every camera and
hands the leases back; and the one-line errors (bad $VIGIL_CAMERAS, a spool folder that cannot be made)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from worker_fake_endpoint import FakeEndpoint

from kvs.local_media import LocalKvsMedia
from local.stack import LocalStack
from worker.__main__ import main
from worker.env import (
    ENV_CAMERAS,
    ENV_ENDPOINT_NAME,
    ENV_FLEET_BATCH_ENABLED,
    ENV_FLEET_BATCH_MAX,
    ENV_FLEET_BATCH_WAIT_MS,
    ENV_FRAME_SAMPLE_FPS,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def lease_items(stack: LocalStack) -> dict[str, str]:
    items = stack.client("dynamodb").scan(TableName="vigil-state", ConsistentRead=True)["Items"]
    return {
        i["id"]["S"]: i.get("owner", {}).get("S", "")
        for i in items
        if i["id"]["S"].startswith(("lease#", "worker#"))
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "{cam-1: nope",
            "error: $VIGIL_CAMERAS is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (
            "[]",
            'error: $VIGIL_CAMERAS must be a non-empty JSON object {"<camera_id>": {"site": ..., "stream_name": ...}}',
        ),
        ('{"cam 1": {"site": "hq", "stream_name": "s"}}', "error: $VIGIL_CAMERAS: invalid camera id 'cam 1'"),
        ('{"cam-1": {"site": "hq"}}', "error: $VIGIL_CAMERAS: camera cam-1: stream_name: Field required"),
        (
            '{"cam-1": {"site": "hq", "stream_name": "s", "rtsp": "x"}}',
            "error: $VIGIL_CAMERAS: camera cam-1: rtsp: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_cameras_json_is_a_one_line_error_and_exit_2(
    raw: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a task whose $VIGIL_CAMERAS is broken
    monkeypatch.setenv(ENV_CAMERAS, raw)
    # WHEN the worker starts as on Fargate (no flags)
    code = main([])
    # THEN one line says what is wrong, and the exit code is 2
    assert (code, capsys.readouterr().err) == (2, message + "\n")


def test_fleet_without_cameras_is_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ENV_CAMERAS, raising=False)
    assert main(["--fleet"]) == 2
    assert capsys.readouterr().err == "error: $VIGIL_CAMERAS is not set: it must hold the cameras as JSON\n"


def test_fleet_configs_take_endpoint_and_sample_rate_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the environment Terraform gives the task
    monkeypatch.setenv(ENV_CAMERAS, json.dumps({"lobby": {"site": "hq", "stream_name": "hq-lobby"}}))
    monkeypatch.setenv(ENV_ENDPOINT_NAME, "vigil-prod-detector")
    monkeypatch.setenv(ENV_FRAME_SAMPLE_FPS, "2.5")
    # WHEN the configs are checked
    assert main(["--validate-config"]) == 0
    # THEN the camera reads its stream with the endpoint and rate of the environment
    config = json.loads(capsys.readouterr().out)["lobby"]
    assert {k: config[k] for k in ("camera_id", "site", "source", "endpoint_name", "sample_fps")} == {
        "camera_id": "lobby",
        "site": "hq",
        "source": "kvs://hq-lobby",
        "endpoint_name": "vigil-prod-detector",
        "sample_fps": 2.5,
    }


def test_fleet_configs_take_fleet_batching_from_the_environment_and_a_file_key_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the fleet batching Terraform gives the task, and a shared config file that sets one key
    monkeypatch.setenv(ENV_CAMERAS, json.dumps({"lobby": {"site": "hq", "stream_name": "hq-lobby"}}))
    monkeypatch.setenv(ENV_FLEET_BATCH_ENABLED, "true")
    monkeypatch.setenv(ENV_FLEET_BATCH_MAX, "16")
    monkeypatch.setenv(ENV_FLEET_BATCH_WAIT_MS, "40")
    config = tmp_path / "worker.json"
    config.write_text(json.dumps({"fleet_batch": {"max_wait_ms": 10}}))
    # WHEN the configs are checked
    assert main(["--validate-config", "--config", str(config)]) == 0
    # THEN the camera batches with the environment's size and the file's wait
    assert json.loads(capsys.readouterr().out)["lobby"]["fleet_batch"] == {
        "enabled": True,
        "max_batch": 16,
        "max_wait_ms": 10.0,
    }


def test_a_bad_fleet_batch_variable_is_a_one_line_error_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a task definition whose batch size is over the worker's bound
    monkeypatch.setenv(ENV_CAMERAS, json.dumps({"lobby": {"site": "hq", "stream_name": "hq-lobby"}}))
    monkeypatch.setenv(ENV_FLEET_BATCH_MAX, "128")
    # WHEN the worker starts as on Fargate (no flags)
    code = main([])
    # THEN one line names the variable, and the exit code is 2
    assert (code, capsys.readouterr().err) == (
        2,
        (
            "error: $VIGIL_FLEET_BATCH_MAX (fleet_batch.max_batch): Input should be less than or equal to 64, "
            "got '128'\n"
        ),
    )


def test_a_spool_folder_that_cannot_be_made_is_a_one_line_error(
    make_video, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a config whose spool folder would be under a regular file
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    config = tmp_path / "worker.json"
    config.write_text(json.dumps({"publisher": {"spool_dir": str(blocker / "spool")}}))
    # WHEN the worker starts
    code = main(
        [
            "--camera-id",
            "cam-1",
            "--site",
            "hq",
            "--source",
            str(make_video(n_frames=10)),
            "--config",
            str(config),
        ]
    )
    # THEN one line names the folder, and the exit code is 2
    err = capsys.readouterr().err
    assert (
        code,
        err.count("\n"),
        err.startswith(f"error: cannot create spool directory {blocker / 'spool'}"),
    ) == (
        2,
        1,
        True,
    ), err


@pytest.mark.timeout(60)
def test_fleet_process_takes_its_cameras_and_sigterm_hands_them_back(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    # GIVEN two silent camera streams and a worker process started as on Fargate (env only)
    run = uuid.uuid4().hex[:8]
    cameras = {f"cam-{i}": {"site": "hq", "stream_name": f"vigil-{run}-{i}"} for i in range(2)}
    log = tmp_path / "fleet.log"
    with LocalKvsMedia() as kvs:
        for spec in cameras.values():
            kvs.stream(spec["stream_name"])
        env = {
            **os.environ,
            **local_stack.env(),
            **kvs.env(),
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": fake_endpoint.url,
            "PYTHONPATH": str(REPO_ROOT),
            ENV_CAMERAS: json.dumps(cameras),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "worker", "--lease-s", "1.5", "--metrics-interval-s", "0"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        try:
            # WHEN it has taken both cameras and is reading both streams
            deadline = time.monotonic() + 30
            while not (
                {k for k in lease_items(local_stack) if k.startswith("lease#")}
                == {"lease#cam-0", "lease#cam-1"}
                and all(kvs.stream(spec["stream_name"]).requests for spec in cameras.values())
            ):
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
            # ... and gets SIGTERM
            process.send_signal(signal.SIGTERM)
            code = process.wait(20)
        finally:
            if process.poll() is None:
                process.kill()
    # THEN it exits 0 having stopped both workers and handed back every lease and its heartbeat
    text = log.read_text()
    assert (code, lease_items(local_stack)) == (0, {}), text[-3000:]
    assert text.count("worker stopped camera=") == 2, text[-3000:]
