"""Archiver: cut a camera's footage into MP4 clips in S3 and list them in a per-day manifest.

Local cut (this module): PyAV remuxes the H.264 packets of a file or live URL between two keyframes,
with no re-encoding, into an MP4. (On AWS the same clips come from KVS `GetClip`; a later issue.)

Layout (DESIGN.md):
- `s3://<bucket>/clips/camera=<id>/date=<YYYY-MM-DD>/<start>_<end>.mp4`
- `s3://<bucket>/manifests/camera=<id>/date=<YYYY-MM-DD>/manifest.jsonl`, one
  `contracts.manifest.ManifestLine` per clip, `source-ref` = the clip's `s3://` URI.

Idempotent and crash-safe: the clip is uploaded to a temporary key and copied into place, and the
manifest line is written last and only once per `source-ref`, so a crash leaves no half clip listed
and archiving the same range twice gives one object and one line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import av
import boto3

from contracts.manifest import ManifestLine
from worker.env import ENV_ARCHIVE_BUCKET

logger = logging.getLogger(__name__)


class ArchiveError(RuntimeError):
    """A clip could not be cut or stored; the message says which source and why."""


@dataclass(frozen=True)
class CutClip:
    path: Path
    first_pts_s: float  # media time of the clip's first frame (a keyframe)
    end_pts_s: float  # media time just after the clip's last frame
    frames: int


def _is_live(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def cut_clip(source: str, start_s: float, end_s: float, out_path: Path) -> CutClip:
    """Remux [keyframe <= start_s, first keyframe >= end_s) of `source` into `out_path` (MP4).

    No re-encoding: the clip starts on a keyframe, so it decodes on its own, and its timestamps are
    rebased to start at 0."""
    if end_s <= start_s:
        raise ArchiveError(f"empty clip range {start_s}..{end_s} s of {source}")
    if not _is_live(source) and not Path(source).is_file():
        raise ArchiveError(f"video source not found: {source}")
    try:
        inp = av.open(source, timeout=10.0 if _is_live(source) else None)
    except (av.FFmpegError, OSError) as exc:
        raise ArchiveError(f"cannot open video source {source}: {exc}") from exc
    with inp:
        if not inp.streams.video:
            raise ArchiveError(f"no video stream in {source}")
        in_stream = inp.streams.video[0]
        time_base = in_stream.time_base
        # Seeking lands on the keyframe at or before start_s: take it (up to one GOP of pre-roll).
        # A live source cannot seek: wait for the first keyframe at or after start_s instead.
        first_allowed_s = start_s
        if start_s > 0 and not _is_live(source):
            inp.seek(int(start_s / time_base), stream=in_stream, backward=True, any_frame=False)
            first_allowed_s = float("-inf")
        offset: int | None = None
        frames = 0
        last_end = 0
        with av.open(str(out_path), mode="w", format="mp4") as out:
            out_stream = out.add_stream_from_template(in_stream)
            for packet in inp.demux(in_stream):
                if packet.pts is None or packet.dts is None:
                    continue  # flush packet at the end of the stream
                pts_s = float(packet.pts * time_base)
                if offset is None:
                    if not packet.is_keyframe or pts_s + 1e-6 < first_allowed_s:
                        continue
                    offset = packet.pts
                elif packet.is_keyframe and pts_s + 1e-6 >= end_s:
                    break
                last_end = max(last_end, packet.pts + (packet.duration or 0))
                packet.pts -= offset
                packet.dts -= offset
                packet.stream = out_stream
                out.mux(packet)
                frames += 1
        if offset is None or frames == 0:
            raise ArchiveError(f"no frames of {source} in {start_s}..{end_s} s")
    return CutClip(out_path, float(offset * time_base), float(last_end * time_base), frames)


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%S") + f"{value.microsecond // 1000:03d}Z"


def clip_key(camera_id: str, start: datetime, end: datetime) -> str:
    return f"clips/camera={camera_id}/date={start.astimezone(UTC):%Y-%m-%d}/{_stamp(start)}_{_stamp(end)}.mp4"


def manifest_key(camera_id: str, day: datetime) -> str:
    return f"manifests/camera={camera_id}/date={day.astimezone(UTC):%Y-%m-%d}/manifest.jsonl"


class Archiver:
    """Stores clips and manifest lines in the archive bucket."""

    def __init__(self, bucket: str, s3_client=None) -> None:
        self.bucket = bucket
        self.s3 = s3_client or boto3.client("s3")

    def archive(
        self,
        source: str,
        camera_id: str,
        start_s: float,
        end_s: float,
        *,
        media_epoch: datetime,
        kind: Literal["normal", "alert"] = "normal",
        alert_id: str | None = None,
    ) -> ManifestLine:
        """Cut [start_s, end_s) of `source` (media time; `media_epoch` is the wall-clock time of media
        time 0) and archive it. Returns the manifest line (written once)."""
        with tempfile.TemporaryDirectory(prefix="vigil-clip-") as tmp:
            clip = cut_clip(source, start_s, end_s, Path(tmp) / "clip.mp4")
            start = media_epoch + timedelta(seconds=clip.first_pts_s)
            end = media_epoch + timedelta(seconds=clip.end_pts_s)
            key = clip_key(camera_id, start, end)
            self._put_atomically(clip.path, key)
        line = ManifestLine(
            source_ref=f"s3://{self.bucket}/{key}",
            camera_id=camera_id,
            start=start,
            end=end,
            kind=kind,
            alert_id=alert_id,
        )
        self._append_manifest(manifest_key(camera_id, start), line)
        logger.info(
            "archived camera=%s clip=s3://%s/%s frames=%d media=%.2f..%.2fs",
            camera_id, self.bucket, key, clip.frames, clip.first_pts_s, clip.end_pts_s,
        )
        return line

    def _put_atomically(self, path: Path, key: str) -> None:
        tmp_key = f"tmp/{uuid.uuid4()}.mp4"
        self.s3.upload_file(str(path), self.bucket, tmp_key, ExtraArgs={"ContentType": "video/mp4"})
        try:
            self.s3.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": tmp_key})
        finally:
            self.s3.delete_object(Bucket=self.bucket, Key=tmp_key)

    def _append_manifest(self, key: str, line: ManifestLine) -> None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
        except self.s3.exceptions.NoSuchKey:
            body = ""
        lines = [raw for raw in body.splitlines() if raw.strip()]
        if any(ManifestLine.model_validate_json(raw).source_ref == line.source_ref for raw in lines):
            return
        lines.append(line.to_json())
        self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=("\n".join(lines) + "\n").encode(), ContentType="application/jsonl"
        )


def download_prefixes(bucket: str, prefixes: list[str], dest: Path, s3_client=None) -> int:
    """Copy every object under `prefixes` to `dest`, keeping key structure, as SageMaker does for
    an S3 training channel. Returns the number of files."""
    s3 = s3_client or boto3.client("s3")
    count = 0
    for prefix in prefixes:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                target = dest / obj["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, obj["Key"], str(target))
                count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.archiver", description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="video file or rtsp/http URL")
    parser.add_argument("--camera-id", required=True)
    parser.add_argument("--start-s", type=float, default=0.0, help="media time to start at (default 0)")
    parser.add_argument("--end-s", type=float, required=True, help="media time to end at")
    parser.add_argument("--bucket", default=os.environ.get(ENV_ARCHIVE_BUCKET), help=f"default ${ENV_ARCHIVE_BUCKET}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not args.bucket:
        parser.error(f"no bucket: pass --bucket or set {ENV_ARCHIVE_BUCKET}")
    try:
        line = Archiver(args.bucket).archive(
            args.source, args.camera_id, args.start_s, args.end_s, media_epoch=datetime.now(UTC)
        )
    except ArchiveError as exc:
        print(f"archiver: {exc}", file=sys.stderr)
        return 2
    print(line.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
