"""The archiver cuts real H.264 into MP4 clips without re-encoding, stores them in (moto) S3 and lists
each once in the day's manifest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import av
import pytest

from archive.archiver import ArchiveError, Archiver, cut_clip, download_prefixes
from archive.clip_source import LocalClipSource
from archive.keys import alert_clip_ref
from archive.schedule import ScheduleConfig
from archive.store import ArchiveStore
from contracts.alert import AlertRecord, S3Object, make_alert_id
from contracts.manifest import ManifestLine

EPOCH = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)


def decode_all(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def test_cut_starts_on_a_keyframe_and_keeps_the_range(make_video, tmp_path):
    # GIVEN a 6 s clip at 10 fps with a keyframe every second
    video = make_video("cam.mp4", n_frames=60)
    # WHEN 2.5..4.0 s is cut
    clip = cut_clip(str(video), 2.5, 4.0, tmp_path / "out.mp4")
    # THEN it opens on the keyframe at 2 s, ends at the keyframe at 4 s, and decodes on its own
    frames = decode_all(clip.path)
    assert (clip.first_pts_s, clip.end_pts_s, clip.frames) == (2.0, 4.0, 20)
    assert len(frames) == 20
    assert frames[0].key_frame
    assert frames[0].time == pytest.approx(0.0)


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(ArchiveError, match="video source not found: .*nope.mp4"):
        cut_clip(str(tmp_path / "nope.mp4"), 0, 1, tmp_path / "out.mp4")


def test_archive_is_idempotent_and_trains_from_the_manifest_layout(local_stack, make_video, tmp_path):
    # GIVEN a camera's footage and the archive bucket
    video = make_video("cam.mp4", n_frames=50)
    archiver = Archiver(local_stack.names.bucket, local_stack.client("s3"))
    # WHEN the same range is archived twice
    first = archiver.archive(str(video), "cam-1", 0.0, 3.0, media_epoch=EPOCH)
    second = archiver.archive(str(video), "cam-1", 0.0, 3.0, media_epoch=EPOCH)
    # THEN there is one clip object and one manifest line, with the contract's fields
    s3 = local_stack.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=local_stack.names.bucket)["Contents"])
    clip_key = "clips/camera=cam-1/date=2026-11-25/20261125T080000000Z_20261125T080003000Z.mp4"
    manifest_key = "manifests/camera=cam-1/date=2026-11-25/manifest.jsonl"
    assert keys == [clip_key, manifest_key]
    assert first == second
    body = s3.get_object(Bucket=local_stack.names.bucket, Key=manifest_key)["Body"].read().decode()
    assert [ManifestLine.model_validate_json(line) for line in body.splitlines()] == [
        ManifestLine(source_ref=f"s3://vigil-archive/{clip_key}", camera_id="cam-1", start=EPOCH,
                     end=datetime(2026, 11, 25, 8, 0, 3, tzinfo=UTC), kind="normal")
    ]
    # AND the downloaded channel holds a clip that decodes to the archived frames
    assert download_prefixes(local_stack.names.bucket, ["clips/", "manifests/"], tmp_path / "chan", s3) == 2
    assert len(decode_all(tmp_path / "chan" / clip_key)) == 30


class CrashingS3:
    """The real (moto) S3 client, except that one operation on one prefix dies like a killed process."""

    def __init__(self, s3, operation: str, prefix: str) -> None:
        self._s3, self._operation, self._prefix = s3, operation, prefix

    def __getattr__(self, name: str):
        real = getattr(self._s3, name)
        if name != self._operation:
            return real

        def crash(*args, **kwargs):
            if kwargs.get("Key", "").startswith(self._prefix):
                raise KeyboardInterrupt(f"injected crash in {name}")
            return real(*args, **kwargs)

        return crash


def all_keys(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.mark.parametrize(
    ("operation", "prefix", "left_behind"),
    [
        ("copy_object", "clips/", []),  # after the upload to tmp/, before the copy into place
        ("put_object", "manifests/", ["clips/camera=cam-1/date=2026-11-25/20261125T080000000Z_20261125T080002000Z.mp4"]),
    ],
)
def test_a_crash_before_the_manifest_write_leaves_nothing_listed(local_stack, make_video, operation, prefix, left_behind):
    # GIVEN an archiver whose process dies in the middle of archiving a clip
    video = make_video("cam.mp4", n_frames=30)
    s3 = local_stack.client("s3")
    bucket = local_stack.names.bucket
    with pytest.raises(KeyboardInterrupt):
        Archiver(bucket, CrashingS3(s3, operation, prefix)).archive(str(video), "cam-1", 0.0, 2.0, media_epoch=EPOCH)
    # THEN no manifest lists anything, and no half clip is in place (a whole clip at most, unlisted)
    assert all_keys(s3, bucket) == left_behind
    # WHEN the restarted archiver archives the same range
    line = Archiver(bucket, s3).archive(str(video), "cam-1", 0.0, 2.0, media_epoch=EPOCH)
    # THEN one clip, one manifest line, and no temporary left
    clip = "clips/camera=cam-1/date=2026-11-25/20261125T080000000Z_20261125T080002000Z.mp4"
    manifest = "manifests/camera=cam-1/date=2026-11-25/manifest.jsonl"
    assert all_keys(s3, bucket) == [clip, manifest]
    body = s3.get_object(Bucket=bucket, Key=manifest)["Body"].read().decode()
    assert body == line.to_json() + "\n"


def test_an_alert_clip_lands_at_the_key_the_alert_was_given(local_stack, make_video):
    # GIVEN an alert whose event starts 3 s into a 10 fps camera file, linked to its future clip
    video = make_video("cam.mp4", n_frames=100, intruder=(30, 60))
    started_at = datetime(2026, 11, 25, 8, 0, 3, tzinfo=UTC)
    alert = AlertRecord(
        alert_id=make_alert_id("cam-1", "scene_anomaly", started_at), camera_id="cam-1", site="hq",
        event_type="scene_anomaly", severity="high", score=0.9, threshold=0.5, started_at=started_at,
        frame_at=started_at, detected_at=started_at, media_time_s=3.0, model_version="m1",
        clip=alert_clip_ref("vigil-archive", "cam-1", started_at, pre_roll_s=2.0, post_roll_s=4.0),
    )
    archiver = Archiver(local_stack.names.bucket, local_stack.client("s3"))
    source = LocalClipSource(str(video), media_epoch=EPOCH)
    # WHEN the archiver archives it (same pre/post roll)
    lines = archiver.archive_alert(source, alert, ScheduleConfig(pre_roll_s=2.0, post_roll_s=4.0))
    # THEN the clip is where the alert points, under alerts/ (kept longer), listed with the alert id
    assert alert.clip == S3Object(
        bucket="vigil-archive", key="alerts/camera=cam-1/date=2026-11-25/20261125T080001000Z_20261125T080007000Z.mp4"
    )
    assert lines == [
        ManifestLine(source_ref=f"s3://vigil-archive/{alert.clip.key}", camera_id="cam-1", kind="alert",
                     start=datetime(2026, 11, 25, 8, 0, 1, tzinfo=UTC), end=datetime(2026, 11, 25, 8, 0, 7, tzinfo=UTC),
                     alert_id=alert.alert_id, event_at="2026-11-25T08:00:03.000Z")
    ]
    s3 = local_stack.client("s3")
    assert s3.head_object(Bucket="vigil-archive", Key=alert.clip.key)["ContentType"] == "video/mp4"


def test_manifest_writers_racing_lose_no_line(local_stack):
    # GIVEN the archiver about to add a line, while feedback writes the manifest between its read and write
    store = ArchiveStore(local_stack.names.bucket, local_stack.client("s3"))
    key = "manifests/camera=cam-1/date=2026-11-25/manifest.jsonl"
    theirs = ManifestLine(source_ref="s3://vigil-archive/clips/a.mp4", kind="normal")
    mine = ManifestLine(source_ref="s3://vigil-archive/clips/b.mp4", kind="normal")
    raced: list[int] = []

    def change(lines: list[ManifestLine]) -> list[ManifestLine]:
        if not raced:  # the other writer gets in first, once
            raced.append(1)
            store.upsert_lines(key, [theirs])
        return [*lines, mine] if mine not in lines else lines

    # WHEN the archiver's conditional write finds the manifest changed
    store.change_manifest(key, change)
    # THEN it re-reads and writes again: both lines are there
    assert store.read_manifest(key)[0] == [theirs, mine]
