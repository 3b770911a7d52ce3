"""The worker's configuration: one camera, its source, the endpoint, the motion gate and the alert
policy. Loadable from JSON (`--config`); CLI flags override the file; AWS resource names, the
endpoint, the sample rate and fleet batching default to the environment (`worker.env`)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from archive.schedule import ScheduleConfig
from contracts.camera_scene import CameraScene
from worker.env import (
    DEFAULT_ALERT_STREAM,
    ENV_ALERT_STREAM,
    ENV_ARCHIVE_BUCKET,
    ENV_ENDPOINT_NAME,
    ENV_FLEET_BATCH_ENABLED,
    ENV_FLEET_BATCH_MAX,
    ENV_FLEET_BATCH_WAIT_MS,
    ENV_FRAME_SAMPLE_FPS,
    ENV_STATE_TABLE,
)

logger = logging.getLogger(__name__)

# Camera ids end up in S3 keys, Kinesis partition keys and log lines: keep them plain.
CAMERA_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class ConfigError(ValueError):
    """A source of the config (file or environment) is unusable; the message is one line."""


class ConfigFileError(ConfigError):
    """The `--config` file is missing, unreadable or not a JSON object."""


class ConfigEnvironmentError(ConfigError):
    """An environment variable that sets a config default holds a value its field refuses."""


class MotionConfig(BaseModel):
    """Motion gate: a frame is sent to the endpoint only when it differs enough from the last frame
    sent, or when `heartbeat_s` of media time has passed since then."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(
        default=0.005,
        ge=0.0,
        le=1.0,
        description="Fraction of low-res pixels that must change for motion (0 sends every frame).",
    )
    pixel_delta: int = Field(
        default=25, ge=1, le=255, description="Grey-level difference that counts a pixel as changed."
    )
    width: int = Field(
        default=160,
        ge=16,
        le=1920,
        description="Width of the greyscale image the gate compares; the height keeps the aspect ratio.",
    )
    blur: int = Field(
        default=5, ge=1, le=31, description="Gaussian blur kernel (odd, pixels of the low-res image)."
    )
    heartbeat_s: float = Field(
        default=2.0,
        gt=0.0,
        le=3600.0,
        description="Send a frame at least this often (media seconds), motion or not, so a still "
        "intruder or a slowly changing scene is still seen.",
    )

    @field_validator("blur")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"blur must be odd, got {value}")
        return value


class PolicyConfig(BaseModel):
    """Alert policy: when a run of high scores becomes an event, and when the event ends."""

    model_config = ConfigDict(extra="forbid")

    min_frames: int = Field(
        default=2,
        ge=1,
        le=100,
        description="Consecutive analysed frames at or over the threshold to open an event.",
    )
    clear_after_s: float = Field(
        default=2.0, ge=0.0, le=3600.0, description="Media seconds below the threshold that close an event."
    )
    cooldown_s: float = Field(
        default=10.0,
        ge=0.0,
        le=86400.0,
        description="Media seconds after an alert during which a new event raises no alert (it is "
        "counted as suppressed).",
    )
    event_type: str = Field(
        default="scene_anomaly", min_length=1, max_length=64, description="Event type of the alerts."
    )
    threshold: float | None = Field(
        default=None,
        description="Score threshold; by default the calibrated threshold the endpoint returns.",
    )


class PublisherConfig(BaseModel):
    """Alert publisher: where alerts wait while Kinesis is slow or unreachable, and how many may wait."""

    model_config = ConfigDict(extra="forbid")

    spool_dir: Path | None = Field(
        default=None,
        description="Directory for alerts not yet on the stream (a subfolder per camera), so a restart "
        "sends them again; null keeps them in memory only (a restart loses them).",
    )
    max_spooled: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Most alerts waiting per camera; one more is refused with an ERROR line and counted.",
    )
    retry_max_s: float = Field(
        default=5.0,
        gt=0.0,
        le=300.0,
        description="Longest wait between PutRecords retries (jittered exponential backoff up to this).",
    )


class KvsConfig(BaseModel):
    """Kinesis Video Streams sources (`source: kvs://<stream-name>`): where to start, checkpoints."""

    model_config = ConfigDict(extra="forbid")

    start: Literal["NOW", "EARLIEST"] = Field(
        default="NOW",
        description="Where to start when the camera has no checkpoint: NOW (live) or EARLIEST (retention).",
    )
    checkpoints: bool = Field(
        default=True,
        description="Resume after the camera's checkpoint in the state table and advance it as fragments "
        "are analysed and their alerts acknowledged; false: always start at `start`.",
    )
    state_table: str = Field(
        default_factory=lambda: os.environ.get(ENV_STATE_TABLE) or "vigil-state",
        min_length=1,
        description=f"DynamoDB table of checkpoints and leases (default ${ENV_STATE_TABLE}, else 'vigil-state').",
    )
    history_frames: int = Field(
        default=16,
        ge=0,
        le=256,
        description="Sampled frames read again before a checkpoint at a restart (pre-roll), so that a temporal "
        "model scores the first frames after it exactly as an uninterrupted run did (at least the model's "
        "window - 1; 0: no pre-roll).",
    )


class CameraStatusConfig(BaseModel):
    """The camera's status item in the state table (`worker.camera_status`), which the console's
    Cameras page lists: state, last analysed frame, lag, model version and threshold."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Write the camera's status item; false: never.")
    interval_s: float = Field(
        default=10.0,
        gt=0.0,
        le=30.0,
        description="Seconds between status writes, at most (a state change - silent, reconnecting, "
        "stopped - is written at once). Keep it well under the console's 60 s 'no heartbeat'.",
    )


class FleetBatchConfig(BaseModel):
    """Fleet mode (`worker.supervisor`): the cameras of one worker task share InvokeEndpoint calls
    (`worker.batching`); a call goes out when `max_batch` frames wait or the oldest has waited
    `max_wait_ms`. One camera (`python -m worker --source ...`) batches its own frames instead
    (`batch_size`, `batch_max_wait_s`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True, description="Share calls across the task's cameras; false: one call per camera batch."
    )
    max_batch: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Frames (or windows) per shared call, at most; also kept under the endpoint's 6 MB "
        "payload limit. Keep it at or below the endpoint's VIGIL_MAX_BATCH.",
    )
    max_wait_ms: float = Field(
        default=20.0,
        ge=0.0,
        le=1000.0,
        description="Longest wait of a frame for others to share its call (latency added at most).",
    )


class WorkerConfig(BaseModel):
    """Everything one worker needs to watch one camera."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(pattern=CAMERA_ID_PATTERN, description="Camera id (S3 keys, partition key, logs).")
    site: str = Field(min_length=1, max_length=128, description="Site the camera belongs to.")
    source: str = Field(
        min_length=1, description="Video file path, an rtsp:// / http(s):// URL, or kvs://<stream-name>."
    )
    endpoint_name: str = Field(
        default="vigil-detector", min_length=1, max_length=63, description="SageMaker endpoint name."
    )
    sample_fps: float = Field(default=5.0, gt=0.0, le=30.0, description="Frames per second analysed.")
    speed: float = Field(
        default=1.0,
        ge=0.0,
        le=1000.0,
        description="Playback rate of file sources (1 = real time, 0 = as fast as possible).",
    )
    start_s: float | None = Field(default=None, ge=0.0, description="Media time to start at (seek).")
    end_s: float | None = Field(default=None, gt=0.0, description="Media time to stop at (exclusive).")
    motion: MotionConfig = Field(
        default_factory=MotionConfig,
        description="Motion gate: a frame goes to the endpoint only when it differs enough from the last one "
        "sent, or when `heartbeat_s` has passed.",
    )
    policy: PolicyConfig = Field(
        default_factory=PolicyConfig,
        description="Alert policy: when a run of high scores becomes an event (an alert), and when it ends.",
    )
    queue_size: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Frames waiting for the analyser; when full, a frame at the live edge is dropped, an "
        "older one waits (see `live_edge_s`).",
    )
    live_edge_s: float = Field(
        default=5.0,
        gt=0.0,
        le=3600.0,
        description="A frame captured at most this long ago is at the live edge: when the analyser cannot "
        "keep up it is dropped (counted), so alerts stay current. An older frame (a catch-up after a restart "
        "or an outage) is never dropped: the reader waits for the analyser, and the lag metric shows it.",
    )
    batch_size: int = Field(default=1, ge=1, le=32, description="Frames per InvokeEndpoint call, at most.")
    batch_max_wait_s: float = Field(
        default=0.05, ge=0.0, le=5.0, description="How long a batch waits to fill before it is sent."
    )
    fleet_batch: FleetBatchConfig = Field(
        default_factory=FleetBatchConfig,
        description="Fleet mode: the cameras of one worker task share InvokeEndpoint calls.",
    )
    inference_max_side: int | None = Field(
        default=960,
        ge=32,
        le=4096,
        description="Upper bound on the longer side of the frames sent to the endpoint. Frames go at the "
        "smallest size at least twice the model's input_size, which the endpoint names in its answers "
        "(`worker.detector.inference_size`; never upscaled), and never over this; it is the only bound "
        "until the endpoint has named the size. Snapshots and clips keep the decoded frame. Null: no bound.",
    )
    max_attempts: int = Field(
        default=4, ge=1, le=10, description="Attempts per InvokeEndpoint / PutRecords call, retries included."
    )
    retry_base_s: float = Field(
        default=0.1, ge=0.0, le=10.0, description="First backoff delay; doubles per retry, jittered."
    )
    archive_bucket: str | None = Field(
        default_factory=lambda: os.environ.get(ENV_ARCHIVE_BUCKET) or None,
        description=f"S3 bucket for snapshots (default ${ENV_ARCHIVE_BUCKET}); null: no snapshots.",
    )
    alert_stream: str = Field(
        default_factory=lambda: os.environ.get(ENV_ALERT_STREAM) or DEFAULT_ALERT_STREAM,
        min_length=1,
        description=f"Kinesis Data Stream for alerts (default ${ENV_ALERT_STREAM}, else 'alerts').",
    )
    publisher: PublisherConfig = Field(
        default_factory=PublisherConfig,
        description="Alert publisher: where alerts wait while Kinesis is slow or unreachable.",
    )
    kvs: KvsConfig = Field(
        default_factory=KvsConfig,
        description="Kinesis Video Streams sources (`kvs://<stream-name>`): where to start, checkpoints.",
    )
    camera_status: CameraStatusConfig = Field(
        default_factory=CameraStatusConfig,
        description="The camera's status item, written to the state table (`kvs.state_table`).",
    )
    scene: CameraScene = Field(
        default_factory=CameraScene,
        description="The camera's scene: zones and their event types, privacy masks, arming schedule, tamper "
        "checks (`contracts.camera_scene`, docs/scenes.md). Empty: one scene_anomaly event anywhere, always "
        "armed, no tamper checks. A deployment may read it live from the state table instead.",
    )
    archive: ScheduleConfig = Field(
        default_factory=ScheduleConfig,
        description="Clips archived to the archive bucket: normal footage on a schedule (KVS sources) and "
        "every alert with pre/post roll; each alert's `clip` names its clip's key.",
    )

    @model_validator(mode="after")
    def _window(self) -> WorkerConfig:
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self


def read_config_file(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, or `ConfigFileError` with a one-line reason."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigFileError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigFileError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"config file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"config file {path} must hold a JSON object, not {type(data).__name__}")
    return data


ENVIRONMENT_DEFAULTS: dict[tuple[str, ...], str] = {
    ("endpoint_name",): ENV_ENDPOINT_NAME,
    ("sample_fps",): ENV_FRAME_SAMPLE_FPS,
    ("fleet_batch", "enabled"): ENV_FLEET_BATCH_ENABLED,
    ("fleet_batch", "max_batch"): ENV_FLEET_BATCH_MAX,
    ("fleet_batch", "max_wait_ms"): ENV_FLEET_BATCH_WAIT_MS,
}
"""Config fields (paths into `WorkerConfig`) whose default the environment (the Fargate task
definition) may set, and the variable that sets each."""


def _environment_value(path: tuple[str, ...], name: str, raw: str) -> Any:
    """`raw` validated against the field at `path` (its type and bounds), or `ConfigEnvironmentError`
    naming the variable, so a bad task definition fails at start-up whatever a config file sets."""
    model: type[BaseModel] = WorkerConfig
    for part in path[:-1]:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    field = model.model_fields[path[-1]]
    try:
        return TypeAdapter(Annotated[field.annotation, field]).validate_python(raw)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        raise ConfigEnvironmentError(f"${name} ({'.'.join(path)}): {message}, got {raw!r}") from None


def environment_defaults() -> dict[str, Any]:
    """The config values the environment sets, validated and nested as in the config, e.g.
    `{"sample_fps": 1.5, "fleet_batch": {"max_batch": 16}}`; unset or empty variables are left out
    (`ENVIRONMENT_DEFAULTS`). `ConfigEnvironmentError` names the first variable with a bad value."""
    data: dict[str, Any] = {}
    for path, name in ENVIRONMENT_DEFAULTS.items():
        raw = os.environ.get(name, "").strip()
        if not raw:
            continue
        parent = data
        for part in path[:-1]:
            parent = parent.setdefault(part, {})
        parent[path[-1]] = _environment_value(path, name, raw)
    return data


def load_config(path: Path | None = None, **overrides: Any) -> WorkerConfig:
    """Config from the environment's defaults, then a JSON file (optional), then `overrides`
    (values that are None are ignored) on top. A file's section that the environment also sets
    (`fleet_batch`) is merged over the environment's one level deep: a file that sets only
    `fleet_batch.max_batch` keeps the environment's `max_wait_ms`. Overrides replace whole fields."""
    data: dict[str, Any] = environment_defaults()
    for key, value in (read_config_file(path) if path is not None else {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    data.update({key: value for key, value in overrides.items() if value is not None})
    return WorkerConfig.model_validate(data)
