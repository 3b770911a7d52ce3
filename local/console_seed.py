"""A local world for the console: alerts with real snapshots and clips cut from a video.

`seed(...)` decodes the video with PyAV, learns the empty scene from its first seconds (median
frame), and for each chosen moment takes the frame, outlines what differs from the empty scene
(background difference: those boxes are the alert's regions, the difference is its score), writes
the snapshot with the worker's `SnapshotWriter`, archives the alert clip with the archiver
(`Archiver.archive_alert`: the MP4 at the key the alert links to, plus its manifest line; the newest
alert's clip is left uncut, as it is while the archiver waits for the post-roll), records each alert with `alert_lambda.history`, and
writes a camera status item per camera. The model version says these come from a background
difference (`seed:background-difference`), not from the trained model.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from alert_lambda.history import record_alert
from archive.archiver import Archiver
from archive.clip_source import LocalClipSource
from archive.keys import DEFAULT_POST_ROLL_S, DEFAULT_PRE_ROLL_S, alert_clip_ref
from console.cameras import CameraStatus
from console.tables import alert_history_table_spec, audit_table_spec
from contracts.alert import AlertRecord, Severity, make_alert_id, utc_iso
from contracts.inference import Region
from contracts.score_trace import ScoreTrace, score_trace_key
from local import SAMPLE_VIDEO
from worker.snapshot import SnapshotWriter

logger = logging.getLogger(__name__)

SEED_MODEL_VERSION = "seed:background-difference"
SEED_THRESHOLD = 0.5
EVENT_TYPE = "scene_anomaly"
PIXEL_DELTA = 40
MIN_REGION_FRACTION = 0.002


@dataclass(frozen=True)
class SeedCamera:
    camera_id: str
    site: str
    moments_s: tuple[float, ...]
    """Media times of the alerts (seconds into the video)."""


DEFAULT_CAMERAS = (
    SeedCamera("lobby-1", "demo-hq", (9.0, 28.0, 55.0, 80.0, 104.0)),
    SeedCamera("dock-2", "demo-port", (62.0, 128.0)),
)


def _frames_at(video: Path, times_s: list[float]) -> dict[float, np.ndarray]:
    """RGB frames at (the first frame at or after) each media time."""
    return dict(_decoded_frames(video, tuple(sorted(set(times_s)))))


@lru_cache(maxsize=4)
def _decoded_frames(video: Path, wanted: tuple[float, ...]) -> tuple[tuple[float, np.ndarray], ...]:
    # Cached: a process that seeds several worlds from the same video (the tests) decodes it once.
    found: dict[float, np.ndarray] = {}
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        for t in wanted:
            container.seek(int(t / stream.time_base), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.time is not None and frame.time >= t - 1e-6:
                    found[t] = frame.to_ndarray(format="rgb24")
                    break
    missing = [t for t in wanted if t not in found]
    if missing:
        raise ValueError(f"{video} has no frames at {missing} s")
    return tuple(found.items())


@lru_cache(maxsize=4)
def empty_scene(video: Path, until_s: float = 5.0, every: int = 5) -> np.ndarray:
    """The median of every `every`-th frame of the first `until_s` seconds: the scene with nobody in it."""
    frames = []
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if frame.time is not None and frame.time >= until_s:
                break
            if index % every == 0:
                frames.append(frame.to_ndarray(format="rgb24"))
    if not frames:
        raise ValueError(f"{video} has no frames in its first {until_s} s")
    return np.median(np.stack(frames), axis=0).astype(np.uint8)


def difference_regions(frame: np.ndarray, background: np.ndarray) -> tuple[float, list[Region]]:
    """(score, regions) of what differs from the background: boxes around changed blobs, each with
    its mean difference (0..1); the score is the strongest region's."""
    grey = [cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (9, 9), 0) for img in (frame, background)]
    diff = cv2.absdiff(grey[0], grey[1])
    mask = cv2.morphologyEx((diff > PIXEL_DELTA).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    height, width = mask.shape
    regions = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if w * h < MIN_REGION_FRACTION * width * height:
            continue
        score = float(diff[y : y + h, x : x + w].mean()) / 255.0 * 4
        regions.append(Region(x=x / width, y=y / height, w=w / width, h=h / height, score=round(score, 4)))
    regions.sort(key=lambda r: r.score, reverse=True)
    return (regions[0].score if regions else 0.0), regions[:5]


def create_console_tables(dynamodb: Any, history_table: str, audit_table: str) -> None:
    """Create the history and audit tables (local runs and tests); existing ones are left alone."""
    existing = set(dynamodb.list_tables()["TableNames"])
    for spec in (alert_history_table_spec(history_table), audit_table_spec(audit_table)):
        if spec["TableName"] in existing:
            continue
        dynamodb.create_table(**spec)
        logger.info("created DynamoDB table %s", spec["TableName"])


def seed(
    s3: Any,
    dynamodb: Any,
    *,
    bucket: str,
    history_table: str,
    state_table: str,
    video: Path = SAMPLE_VIDEO,
    cameras: tuple[SeedCamera, ...] = DEFAULT_CAMERAS,
    now: datetime | None = None,
    cut_newest_clip: bool = False,
) -> list[AlertRecord]:
    """Seed alerts (newest last) for `cameras` from `video`; returns them."""
    now = now or datetime.now(UTC)
    epoch = (now - timedelta(minutes=10)).replace(microsecond=0)  # media time 0, ten minutes ago
    background = empty_scene(video)
    frames = _frames_at(video, [t for cam in cameras for t in cam.moments_s])
    snapshots = SnapshotWriter(bucket, client=s3)
    alerts: list[AlertRecord] = []
    for camera in cameras:
        for t in camera.moments_s:
            started_at = epoch + timedelta(seconds=t)
            score, regions = difference_regions(frames[t], background)
            alert = AlertRecord(
                alert_id=make_alert_id(camera.camera_id, EVENT_TYPE, started_at),
                camera_id=camera.camera_id,
                site=camera.site,
                event_type=EVENT_TYPE,
                severity=Severity.HIGH if score > 2 * SEED_THRESHOLD else Severity.MEDIUM,
                score=round(score, 4),
                threshold=SEED_THRESHOLD,
                started_at=started_at,
                frame_at=started_at,
                detected_at=started_at + timedelta(milliseconds=400),
                media_time_s=t,
                regions=regions,
                clip=alert_clip_ref(bucket, camera.camera_id, started_at),
                model_version=SEED_MODEL_VERSION,
            )
            snapshot = snapshots.write(alert, frames[t])
            alert = alert.model_copy(update={"snapshot": snapshot})
            alerts.append(alert)
    newest = max(alerts, key=lambda a: a.started_at)
    archiver = Archiver(bucket, s3)
    source = LocalClipSource(str(video), epoch)
    for alert in alerts:
        if alert is newest and not cut_newest_clip:
            continue
        archiver.archive_alert(source, alert)  # the clip at alert.clip.key, and its manifest line
        write_score_trace(s3, video, alert)  # what the worker writes once the post-roll is analysed
    for alert in alerts:
        record_alert(alert, history_table)
    for camera in cameras:
        last = max((a for a in alerts if a.camera_id == camera.camera_id), key=lambda a: a.frame_at)
        status = CameraStatus(
            camera_id=camera.camera_id, site=camera.site, state="analysing" if camera.site == "demo-hq" else "silent",
            last_frame_at=last.frame_at, lag_ms=430.0, model_version=SEED_MODEL_VERSION,
            threshold=SEED_THRESHOLD, worker_id="seed", updated_at=now,
        )
        dynamodb.put_item(TableName=state_table, Item=_serialize(status.to_item()))
    logger.info("seeded %d alerts on %d cameras from %s", len(alerts), len(cameras), video)
    return alerts


TRACE_FPS = 2.0


def write_score_trace(s3: Any, video: Path, alert: AlertRecord) -> None:
    """The alert's score trace next to its clip: the background difference of a frame every
    1/TRACE_FPS s over the clip's range (the worker's trace has the model's score of each analysed frame)."""
    if alert.clip is None or alert.media_time_s is None:
        return
    offsets = _trace_offsets(DEFAULT_PRE_ROLL_S, DEFAULT_POST_ROLL_S)
    points = _trace_points(video, alert.media_time_s, offsets)
    trace = ScoreTrace(alert_id=alert.alert_id, camera_id=alert.camera_id, threshold=alert.threshold,
                       model_version=alert.model_version, pre_roll_s=DEFAULT_PRE_ROLL_S,
                       post_roll_s=DEFAULT_POST_ROLL_S, points=points)
    s3.put_object(Bucket=alert.clip.bucket, Key=score_trace_key(alert.clip.key),
                  Body=trace.model_dump_json().encode(), ContentType="application/json")


def _trace_offsets(pre_roll_s: float, post_roll_s: float) -> tuple[float, ...]:
    steps = int((pre_roll_s + post_roll_s) * TRACE_FPS)
    return tuple(round(-pre_roll_s + i / TRACE_FPS, 3) for i in range(steps + 1))


@lru_cache(maxsize=64)
def _trace_points(video: Path, media_time_s: float, offsets: tuple[float, ...]) -> list[tuple[float, float]]:
    """[offset, score] at each offset from `media_time_s` the video has a frame for (one seek, one pass)."""
    wanted = [media_time_s + o for o in offsets if media_time_s + o >= 0]
    scene = empty_scene(video)
    points: list[tuple[float, float]] = []
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        container.seek(int(wanted[0] / stream.time_base), stream=stream, backward=True, any_frame=False)
        pending = list(wanted)
        for frame in container.decode(stream):
            if frame.time is None or frame.time < pending[0] - 1e-6:
                continue
            score, _ = difference_regions(frame.to_ndarray(format="rgb24"), scene)
            while pending and frame.time >= pending[0] - 1e-6:
                points.append((round(pending.pop(0) - media_time_s, 3), round(score, 4)))
            if not pending:
                break
    return points


def keep_alive(dynamodb: Any, state_table: str, stop: threading.Event, interval_s: float = 10.0) -> None:
    """Rewrite every seeded camera status (worker_id `seed`) with a fresh `updated_at` every
    `interval_s`, keeping its state, so `make console` does not show "no heartbeat" after a minute;
    stops when `stop` is set. Runs beside the console in `python -m local.console --demo`."""
    while not stop.wait(interval_s):
        try:
            response = dynamodb.scan(TableName=state_table, FilterExpression="worker_id = :seed",
                                     ExpressionAttributeValues={":seed": {"S": "seed"}})
            for item in response["Items"]:
                item["updated_at"] = {"S": utc_iso(datetime.now(UTC))}
                dynamodb.put_item(TableName=state_table, Item=item)
        except (ClientError, BotoCoreError) as exc:  # the moto server going away at shutdown: say so, stop
            logger.warning("seeded camera heartbeat failed: %s", exc)
            return


def _serialize(item: dict[str, Any]) -> dict[str, Any]:
    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in item.items()}
