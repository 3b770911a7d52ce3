"""Worker config: documented defaults, bounds, extra keys refused, env defaults, file + overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from archive.schedule import ScheduleConfig
from contracts.camera_scene import CameraScene
from worker.config import (
    ENVIRONMENT_DEFAULTS,
    CameraStatusConfig,
    ConfigEnvironmentError,
    ConfigFileError,
    FleetBatchConfig,
    KvsConfig,
    MotionConfig,
    PolicyConfig,
    PublisherConfig,
    WorkerConfig,
    environment_defaults,
    load_config,
)
from worker.env import (
    ENV_ALERT_STREAM,
    ENV_ARCHIVE_BUCKET,
    ENV_ENDPOINT_NAME,
    ENV_FLEET_BATCH_ENABLED,
    ENV_FLEET_BATCH_MAX,
    ENV_FLEET_BATCH_WAIT_MS,
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
        "live_edge_s": 5.0,
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
        "scene": CameraScene().model_dump(),
        "archive": ScheduleConfig().model_dump(),
    }
    assert (config.scene.zones, config.scene.privacy_masks, config.scene.schedule, config.scene.tamper.enabled) == (
        [], [], None, False)  # an empty scene: one event anywhere, always armed, no tamper checks
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


@pytest.fixture
def task_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No config default set by the environment until the test sets one."""
    for name in ENVIRONMENT_DEFAULTS.values():
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_environment_defaults_nest_the_fleet_batch_variables(task_environment: pytest.MonkeyPatch):
    # GIVEN no config variable in the environment
    # WHEN its defaults are read  THEN there are none
    assert environment_defaults() == {}

    # GIVEN every variable the Fargate task definition sets (as Terraform's tostring() writes them)
    task_environment.setenv(ENV_ENDPOINT_NAME, "vigil-prod")
    task_environment.setenv(ENV_FRAME_SAMPLE_FPS, "2.5")
    task_environment.setenv(ENV_FLEET_BATCH_ENABLED, "false")
    task_environment.setenv(ENV_FLEET_BATCH_MAX, "16")
    task_environment.setenv(ENV_FLEET_BATCH_WAIT_MS, "35.5")

    # WHEN its defaults are read
    defaults = environment_defaults()

    # THEN they are typed and nested as in the config
    assert defaults == {
        "endpoint_name": "vigil-prod",
        "sample_fps": 2.5,
        "fleet_batch": {"enabled": False, "max_batch": 16, "max_wait_ms": 35.5},
    }
    assert load_config(**REQUIRED).fleet_batch == FleetBatchConfig(
        enabled=False, max_batch=16, max_wait_ms=35.5
    )


def test_an_empty_fleet_batch_variable_keeps_the_config_default(task_environment: pytest.MonkeyPatch):
    # GIVEN a task that sets only the batch size, and an empty wait
    task_environment.setenv(ENV_FLEET_BATCH_MAX, "4")
    task_environment.setenv(ENV_FLEET_BATCH_WAIT_MS, " ")

    # WHEN the config is loaded
    config = load_config(**REQUIRED)

    # THEN the unset fields keep FleetBatchConfig's defaults
    assert (environment_defaults(), config.fleet_batch) == (
        {"fleet_batch": {"max_batch": 4}},
        FleetBatchConfig(enabled=True, max_batch=4, max_wait_ms=20.0),
    )


def test_a_config_files_fleet_batch_is_merged_over_the_environments_one_level_deep(
    task_environment: pytest.MonkeyPatch, tmp_path: Path
):
    # GIVEN the task's fleet batching, and a config file that changes only the batch size
    task_environment.setenv(ENV_FLEET_BATCH_ENABLED, "true")
    task_environment.setenv(ENV_FLEET_BATCH_MAX, "16")
    task_environment.setenv(ENV_FLEET_BATCH_WAIT_MS, "50")
    path = tmp_path / "worker.json"
    path.write_text(json.dumps({**REQUIRED, "fleet_batch": {"max_batch": 4}}))

    # WHEN configs are loaded from the environment alone, with the file, and with an override
    from_env = load_config(**REQUIRED)
    from_file = load_config(path)
    from_override = load_config(path, fleet_batch={"enabled": False})

    # THEN the file's key wins and the environment's other keys stay; an override replaces the
    # whole field, as every override does
    assert [c.fleet_batch for c in (from_env, from_file, from_override)] == [
        FleetBatchConfig(enabled=True, max_batch=16, max_wait_ms=50.0),
        FleetBatchConfig(enabled=True, max_batch=4, max_wait_ms=50.0),
        FleetBatchConfig(enabled=False, max_batch=8, max_wait_ms=20.0),
    ]


def test_a_config_files_bad_fleet_batch_key_is_still_refused_after_the_merge(
    task_environment: pytest.MonkeyPatch, tmp_path: Path
):
    # GIVEN the task's batch size, and a config file with a misspelt fleet_batch key
    task_environment.setenv(ENV_FLEET_BATCH_MAX, "16")
    path = tmp_path / "worker.json"
    path.write_text(json.dumps({**REQUIRED, "fleet_batch": {"max_wait": 5}}))

    # WHEN it is loaded  THEN the misspelt key is refused as without the environment
    with pytest.raises(ValidationError) as info:
        load_config(path)
    assert [(tuple(e["loc"]), e["type"]) for e in info.value.errors()] == [
        (("fleet_batch", "max_wait"), "extra_forbidden")
    ]


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        (
            ENV_FLEET_BATCH_MAX,
            "0",
            "$VIGIL_FLEET_BATCH_MAX (fleet_batch.max_batch): Input should be greater than or equal to 1, got '0'",
        ),
        (
            ENV_FLEET_BATCH_MAX,
            "65",
            "$VIGIL_FLEET_BATCH_MAX (fleet_batch.max_batch): Input should be less than or equal to 64, got '65'",
        ),
        (
            ENV_FLEET_BATCH_MAX,
            "8.5",
            (
                "$VIGIL_FLEET_BATCH_MAX (fleet_batch.max_batch): Input should be a valid integer, unable to parse "
                "string as an integer, got '8.5'"
            ),
        ),
        (
            ENV_FLEET_BATCH_WAIT_MS,
            "-1",
            (
                "$VIGIL_FLEET_BATCH_WAIT_MS (fleet_batch.max_wait_ms): Input should be greater than or equal to 0, "
                "got '-1'"
            ),
        ),
        (
            ENV_FLEET_BATCH_WAIT_MS,
            "20ms",
            (
                "$VIGIL_FLEET_BATCH_WAIT_MS (fleet_batch.max_wait_ms): Input should be a valid number, unable to "
                "parse string as a number, got '20ms'"
            ),
        ),
        (
            ENV_FLEET_BATCH_ENABLED,
            "maybe",
            (
                "$VIGIL_FLEET_BATCH_ENABLED (fleet_batch.enabled): Input should be a valid boolean, unable to "
                "interpret input, got 'maybe'"
            ),
        ),
        (
            ENV_FRAME_SAMPLE_FPS,
            "31",
            "$VIGIL_FRAME_SAMPLE_FPS (sample_fps): Input should be less than or equal to 30, got '31'",
        ),
    ],
)
def test_a_bad_environment_value_is_a_one_line_error_naming_the_variable(
    task_environment: pytest.MonkeyPatch, tmp_path: Path, name: str, raw: str, message: str
):
    # GIVEN a task definition with one bad value, and a config file that sets every field it could set
    task_environment.setenv(name, raw)
    path = tmp_path / "worker.json"
    path.write_text(
        json.dumps(
            {**REQUIRED, "sample_fps": 2, "fleet_batch": {"enabled": True, "max_batch": 4, "max_wait_ms": 5}}
        )
    )

    # WHEN the config is loaded, with or without the file
    # THEN the variable is named in one line either way: a broken task definition does not start
    for args in ((), (path,)):
        with pytest.raises(ConfigEnvironmentError) as info:
            load_config(*args, **REQUIRED)
        assert str(info.value) == message
