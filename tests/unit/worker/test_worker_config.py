"""Worker config: documented defaults, bounds, extra keys refused, env defaults, file + overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from worker.archive.schedule import ScheduleConfig
from worker.config import (
    CameraStatusConfig,
    ConfigFileError,
    FleetBatchConfig,
    KvsConfig,
    MotionConfig,
    PolicyConfig,
    PublisherConfig,
    WorkerConfig,
    load_config,
)
from worker.env import (
    ENV_ALERT_STREAM,
    ENV_ARCHIVE_BUCKET,
    ENV_ENDPOINT_NAME,
    ENV_FRAME_SAMPLE_FPS,
    ENV_STATE_TABLE,
)

REQUIRED = {"camera_id": "cam-1", "site": "hq", "source": "clip.mp4"}


def test_defaults(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(ENV_ARCHIVE_BUCKET, raising=False)
    monkeypatch.delenv(ENV_ALERT_STREAM, raising=False)
    monkeypatch.delenv(ENV_STATE_TABLE, raising=False)

    config = WorkerConfig(**REQUIRED)

    assert config.model_dump() == {
        **REQUIRED,
        "endpoint_name": "vigil-detector",
        "sample_fps": 5.0,
        "speed": 1.0,
        "start_s": None,
        "end_s": None,
        "motion": MotionConfig().model_dump(),
        "policy": PolicyConfig().model_dump(),
        "queue_size": 16,
        "batch_size": 1,
        "batch_max_wait_s": 0.05,
        "fleet_batch": FleetBatchConfig().model_dump(),
        "inference_max_side": 960,
        "max_attempts": 4,
        "retry_base_s": 0.1,
        "archive_bucket": None,
        "alert_stream": "alerts",
        "publisher": PublisherConfig().model_dump(),
        "kvs": KvsConfig().model_dump(),
        "camera_status": {"enabled": True, "interval_s": 10.0},
        "archive": ScheduleConfig().model_dump(),
    }
    assert (config.kvs.state_table, config.kvs.start, config.publisher.spool_dir) == (
        "vigil-state",
        "NOW",
        None,
    )
    assert (config.motion.heartbeat_s, config.policy.min_frames, config.policy.clear_after_s) == (2.0, 2, 2.0)
    assert (config.policy.event_type, config.policy.threshold) == ("scene_anomaly", None)
    assert config.fleet_batch == FleetBatchConfig(enabled=True, max_batch=8, max_wait_ms=20.0)
    assert config.camera_status == CameraStatusConfig(enabled=True, interval_s=10.0)


def test_aws_names_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ENV_ARCHIVE_BUCKET, "my-archive")
    monkeypatch.setenv(ENV_ALERT_STREAM, "my-alerts")

    config = WorkerConfig(**REQUIRED)

    assert (config.archive_bucket, config.alert_stream) == ("my-archive", "my-alerts")


@pytest.mark.parametrize(
    ("override", "location"),
    [
        ({"sample_fps": 0}, ("sample_fps",)),
        ({"sample_fps": 31}, ("sample_fps",)),
        ({"speed": -1}, ("speed",)),
        ({"camera_id": "cam 1/x"}, ("camera_id",)),
        ({"motion": {"blur": 4}}, ("motion", "blur")),
        ({"motion": {"heartbeat_s": 0}}, ("motion", "heartbeat_s")),
        ({"policy": {"min_frames": 0}}, ("policy", "min_frames")),
        ({"policy": {"thresold": 1.0}}, ("policy", "thresold")),
        ({"batch_size": 33}, ("batch_size",)),
        ({"fleet_batch": {"max_batch": 0}}, ("fleet_batch", "max_batch")),
        ({"fleet_batch": {"max_wait_ms": 1001}}, ("fleet_batch", "max_wait_ms")),
        ({"fleet_batch": {"max_wait": 5}}, ("fleet_batch", "max_wait")),
        ({"sampel_fps": 5}, ("sampel_fps",)),
        ({"camera_status": {"interval_s": 0}}, ("camera_status", "interval_s")),
        ({"camera_status": {"interval_s": 31}}, ("camera_status", "interval_s")),
        ({"camera_status": {"every_s": 5}}, ("camera_status", "every_s")),
        ({"start_s": 5, "end_s": 5}, ()),
    ],
)
def test_bad_values_are_refused(override: dict, location: tuple):
    with pytest.raises(ValidationError) as info:
        WorkerConfig(**{**REQUIRED, **override})

    assert [tuple(error["loc"]) for error in info.value.errors()] == [location]


def test_load_config_file_with_cli_overrides(tmp_path: Path):
    # GIVEN a config file
    path = tmp_path / "worker.json"
    path.write_text(json.dumps({**REQUIRED, "sample_fps": 2, "policy": {"min_frames": 3}}))

    # WHEN loaded with flags (None means "flag not given")
    config = load_config(path, sample_fps=4.0, source="other.mp4", speed=None)

    # THEN flags win, the file fills the rest
    assert (config.source, config.sample_fps, config.speed, config.policy.min_frames) == (
        "other.mp4",
        4.0,
        1.0,
        3,
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "config file not found"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object, not list"),
    ],
)
def test_bad_config_files(tmp_path: Path, content: str | None, message: str):
    path = tmp_path / "worker.json"
    if content is not None:
        path.write_text(content)

    with pytest.raises(ConfigFileError, match=message):
        load_config(path)


def test_endpoint_and_sample_rate_default_to_the_environment_and_file_and_flags_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # GIVEN the task environment Terraform sets, and a config file that sets the rate
    monkeypatch.setenv(ENV_ENDPOINT_NAME, "vigil-prod")
    monkeypatch.setenv(ENV_FRAME_SAMPLE_FPS, "1.5")
    path = tmp_path / "worker.json"
    path.write_text(json.dumps({**REQUIRED, "sample_fps": 3.0}))

    # WHEN configs are loaded with and without the file, and with a flag
    from_env = load_config(**REQUIRED)
    from_file = load_config(path)
    from_flag = load_config(path, endpoint_name="vigil-test")

    # THEN the environment is the default, the file beats it, a flag beats both
    assert [(c.endpoint_name, c.sample_fps) for c in (from_env, from_file, from_flag)] == [
        ("vigil-prod", 1.5),
        ("vigil-prod", 3.0),
        ("vigil-test", 3.0),
    ]
