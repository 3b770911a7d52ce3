"""Archiver: cut a camera's footage into MP4 clips in S3 and list them in a per-day manifest.

Clips come from a `ClipSource`: the local cut (PyAV remux between keyframes, no re-encoding) or
Kinesis Video Streams `GetClip` (`archive.kvs`). Layout (`archive.keys`):
- `s3://<bucket>/clips/camera=<id>/date=<YYYY-MM-DD>/<start>_<end>.mp4`: normal footage;
- `s3://<bucket>/alerts/camera=<id>/date=<YYYY-MM-DD>/<start>_<end>.mp4`: alert clips (kept longer);
- `s3://<bucket>/manifests/camera=<id>/date=<YYYY-MM-DD>/manifest.jsonl`, one
  `contracts.manifest.ManifestLine` per clip, `source-ref` = the clip's `s3://` URI.

Idempotent and crash-safe: each clip is uploaded to a temporary key and copied into place, and the
manifest lines are written last, once per `source-ref` (a conditional write), so a crash leaves no
half clip listed and archiving the same range twice gives one object and one line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from archive.clip_source import ClipSource, FetchedClip, LocalClipSource
from archive.errors import ArchiveError
from archive.keys import ENV_ARCHIVE_BUCKET, alert_clip_key, clip_key, feedback_key, manifest_key
from archive.labels import EVENT_AT_FIELD, FeedbackLabel, events_for
from archive.local_cut import CutClip, cut_clip
from archive.schedule import ClipRequest, ScheduleConfig, alert_request, plan_clips
from archive.store import ArchiveStore
from contracts.alert import AlertRecord, utc_iso
from contracts.manifest import ManifestLine

logger = logging.getLogger(__name__)

__all__ = [
    "ArchiveError", "Archiver", "ClipRequest", "CutClip", "ScheduleConfig", "alert_clip_key", "clip_key",
    "cut_clip", "download_prefixes", "manifest_key", "piece_keys", "plan_clips",
]


def piece_keys(request: ClipRequest, pieces: list[FetchedClip]) -> list[str]:
    """The key of each piece of a request. One piece takes the request's key. When a gap (or a
    GetClip limit) split the range, each piece is keyed by its part of the range, except that the
    piece holding the event start of an alert clip keeps the key the alert links to."""
    if len(pieces) == 1:
        return [request.key]
    anchor = None
    if request.event_at is not None:
        anchor = next((i for i, p in enumerate(pieces) if p.start <= request.event_at < p.end), None)
        if anchor is None:
            anchor = next((i for i, p in enumerate(pieces) if p.start > request.event_at), len(pieces) - 1)
    return [
        request.key if i == anchor
        else clip_key(request.camera_id, max(request.start, p.start), min(request.end, p.end), request.kind)
        for i, p in enumerate(pieces)
    ]


class Archiver:
    """Stores clips and manifest lines in the archive bucket."""

    def __init__(self, bucket: str, s3_client=None) -> None:
        self.bucket = bucket
        self.store = ArchiveStore(bucket, s3_client)
        self.s3 = self.store.s3

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
        """Cut [start_s, end_s) of a local `source` (media time; `media_epoch` is the wall-clock time
        of media time 0) and archive it. Returns the manifest line (written once)."""
        request = ClipRequest(
            camera_id=camera_id, kind=kind, alert_id=alert_id, media_epoch=media_epoch,
            start=media_epoch + timedelta(seconds=start_s), end=media_epoch + timedelta(seconds=end_s),
        )
        return self.archive_request(LocalClipSource(source, media_epoch), request)[0]

    def archive_alert(
        self, source: ClipSource, alert: AlertRecord, config: ScheduleConfig | None = None
    ) -> list[ManifestLine]:
        """Archive the clip of `alert` (pre-roll before to post-roll after its start) at the key
        `alert_clip_key` gave the worker."""
        return self.archive_request(source, alert_request(alert, config or ScheduleConfig()))

    def read_feedback(self, camera_id: str, alert_id: str) -> FeedbackLabel | None:
        data = self.store.get_json(feedback_key(camera_id, alert_id))
        return None if data is None else FeedbackLabel.model_validate(data)

    def archive_request(self, source: ClipSource, request: ClipRequest) -> list[ManifestLine]:
        """Fetch the request's footage, store each continuous piece, then list them all in the
        manifest in one write. Returns the manifest lines."""
        label = self.read_feedback(request.camera_id, request.alert_id) if request.alert_id else None
        lines = []
        with tempfile.TemporaryDirectory(prefix="vigil-clip-") as tmp:
            pieces = source.fetch(request.start, request.end, Path(tmp))
            for piece, key in zip(pieces, piece_keys(request, pieces), strict=True):
                self.store.put_clip(piece.path, key)
                extra = {EVENT_AT_FIELD: utc_iso(request.event_at)} if request.event_at else {}
                lines.append(
                    ManifestLine(
                        source_ref=self.store.uri(key), camera_id=request.camera_id, start=piece.start,
                        end=piece.end, kind=request.kind, alert_id=request.alert_id,
                        events=events_for(label, piece.probe, piece.start, request.event_at), **extra,
                    )
                )
                logger.info(
                    "archived camera=%s clip=%s frames=%d %s..%s from %s",
                    request.camera_id, self.store.uri(key), piece.probe.frames,
                    utc_iso(piece.start), utc_iso(piece.end), source.name,
                )
        self.store.upsert_lines(manifest_key(request.camera_id, request.start), lines)
        return lines


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


def _utc(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m archive.archiver", description=__doc__.splitlines()[0])
    parser.add_argument("--camera-id", required=True, help="camera id (S3 keys, manifests)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--source", help="video file or rtsp/http URL (local cut)")
    where.add_argument("--kvs-stream", help="Kinesis Video Streams stream name (GetClip)")
    parser.add_argument("--start-s", type=float, default=0.0, help="--source: media time to start at (default 0)")
    parser.add_argument("--end-s", type=float, default=None, help="--source: media time to end at")
    parser.add_argument("--media-epoch", type=_utc, default=None,
                        help="--source: wall-clock time (ISO 8601) of media time 0 (default: now)")
    parser.add_argument("--start", type=_utc, default=None, help="--kvs-stream: range start, ISO 8601 (UTC if no zone)")
    parser.add_argument("--end", type=_utc, default=None, help="--kvs-stream: range end, ISO 8601")
    parser.add_argument("--scheduled", action="store_true",
                        help="--kvs-stream: archive the normal-footage slots starting in --start..--end instead of the range")
    parser.add_argument("--every-s", type=float, default=900.0, help="--scheduled: a clip every N s (default 900)")
    parser.add_argument("--duration-s", type=float, default=30.0, help="--scheduled: clip length, s (default 30)")
    parser.add_argument("--kind", choices=["normal", "alert"], default="normal", help="clip kind (default normal)")
    parser.add_argument("--alert-id", default=None, help="alert id of an alert clip (default none)")
    parser.add_argument("--bucket", default=os.environ.get(ENV_ARCHIVE_BUCKET), help=f"default ${ENV_ARCHIVE_BUCKET}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not args.bucket:
        parser.error(f"no bucket: pass --bucket or set {ENV_ARCHIVE_BUCKET}")
    if args.kind == "alert" and not args.alert_id:
        parser.error("--kind alert needs --alert-id")
    try:
        archiver = Archiver(args.bucket)
        if args.source:
            if args.end_s is None:
                parser.error("--source needs --end-s")
            lines = [archiver.archive(args.source, args.camera_id, args.start_s, args.end_s, kind=args.kind,
                                      alert_id=args.alert_id, media_epoch=args.media_epoch or datetime.now(UTC))]
        else:
            from archive.kvs import KvsClipSource

            if args.start is None or args.end is None or args.end <= args.start:
                parser.error("--kvs-stream needs --start and a later --end")
            source = KvsClipSource(args.kvs_stream)
            if args.scheduled:
                config = ScheduleConfig(every_s=args.every_s, duration_s=args.duration_s)
                requests = plan_clips(args.camera_id, args.start, args.end, config)
            else:
                requests = [ClipRequest(camera_id=args.camera_id, kind=args.kind, alert_id=args.alert_id,
                                        start=args.start, end=args.end)]
            lines = [line for request in requests for line in archiver.archive_request(source, request)]
    except (ArchiveError, ValidationError) as exc:
        print(f"archiver: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"archiver: AWS call failed: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
