"""The archiver cuts real H.264 into MP4 clips without re-encoding, stores them in (moto) S3 and lists
each once in the day's manifest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import av
import pytest

from contracts.manifest import ManifestLine
from worker.archiver import ArchiveError, Archiver, cut_clip, download_prefixes

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
