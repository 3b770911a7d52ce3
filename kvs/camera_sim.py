"""`make camera-sim STREAM=... VIDEO=...`: stream a video file into a Kinesis Video Stream with
PutMedia, as a camera would, for smoke tests in a real account (boto3 has no PutMedia).

    python -m kvs.camera_sim --stream cam-1 --video clip.mp4 [--region eu-west-1] [--speed 1] [--loop 1]

The file's H.264 (re-encoded with libx264 when it is something else) goes out as one chunked MKV
body: EBML header, Segment of unknown size, Info, Tracks, then one Cluster per fragment (from each
keyframe to the next), paced to real time divided by `--speed`. The request is signed with
botocore's SigV4Auth (`UNSIGNED-PAYLOAD`, the body is a stream) against the PUT_MEDIA data
endpoint from GetDataEndpoint. KVS answers with one JSON event per fragment (RECEIVED, PERSISTED,
or an ErrorId); the exit code is 1 when any fragment failed, 2 on bad input."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError, ClientError

from kvs.mkv_writer import (
    Packet,
    VideoTrack,
    cluster,
    fragments_by_keyframe,
    h264_packets,
    producer_header,
)
from kvs.reader import EndpointCache

logger = logging.getLogger(__name__)

PUT_MEDIA = "PUT_MEDIA"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass
class PutMediaResult:
    fragments_sent: int = 0
    bytes_sent: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def persisted(self) -> int:
        return sum(event.get("EventType") == "PERSISTED" for event in self.events)

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [event for event in self.events if event.get("EventType") == "ERROR" or "ErrorId" in event]


def mkv_body(
    track: VideoTrack, packets: list[Packet], *, speed: float = 0.0, loops: int = 1, result: PutMediaResult
) -> Iterator[bytes]:
    """The PutMedia body, a piece per fragment, paced to real time / `speed` (0: at once)."""
    header = producer_header(track)
    result.bytes_sent += len(header)
    yield header
    duration_ms = packets[-1].pts_ms + (packets[-1].pts_ms - packets[-2].pts_ms if len(packets) > 1 else 40)
    started = time.monotonic()
    for loop in range(loops):
        offset = loop * duration_ms
        for group in fragments_by_keyframe(packets):
            shifted = [Packet(p.pts_ms + offset, p.keyframe, p.data) for p in group]
            if speed > 0:
                delay = started + shifted[0].pts_ms / 1000 / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            piece = cluster(shifted[0].pts_ms, shifted)
            result.fragments_sent += 1
            result.bytes_sent += len(piece)
            yield piece


def put_media(
    stream_name: str,
    track: VideoTrack,
    packets: list[Packet],
    *,
    speed: float = 0.0,
    loops: int = 1,
    endpoints: EndpointCache | None = None,
    session: boto3.Session | None = None,
) -> PutMediaResult:
    session = session or boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials found")
    region = session.region_name or "us-east-1"
    url = (endpoints or EndpointCache(session.client("kinesisvideo"))).get(
        stream_name, PUT_MEDIA
    ) + "/putMedia"
    headers = {
        "x-amzn-stream-name": stream_name,
        "x-amzn-fragment-timecode-type": "RELATIVE",
        "x-amzn-producer-start-timestamp": f"{time.time():.3f}",
        "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD",
        "Content-Type": "application/octet-stream",
    }
    request = AWSRequest(method="POST", url=url, headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "kinesisvideo", region).add_auth(request)
    result = PutMediaResult()
    body = mkv_body(track, packets, speed=speed, loops=loops, result=result)
    response = urllib3.PoolManager().request(
        "POST", url, body=body, headers=dict(request.headers.items()), chunked=True, preload_content=False
    )
    for line in response.read().decode("utf-8", "replace").splitlines():
        if line.strip():
            try:
                result.events.append(json.loads(line))
            except json.JSONDecodeError:
                result.events.append({"EventType": "ERROR", "raw": line})
    if response.status != 200:
        result.events.append({"EventType": "ERROR", "status": response.status})
    return result


def description() -> str:
    """The module docstring's first paragraph, whole (argparse's --help)."""
    return " ".join(__doc__.split("\n\n")[0].split())


MISSING_CREDENTIALS = (
    "no AWS credentials found: sign in first (`aws configure`, or `aws sso login --profile NAME` and "
    "AWS_PROFILE=NAME), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)
MISSING_REGION = (
    "no AWS region: pass --region (make camera-sim ARGS='--region eu-west-1'), or set AWS_REGION, or a "
    "region in the profile; use the region of the stream"
)


def aws_session(region: str | None) -> boto3.Session:
    """A session for `region` (else the environment's or profile's), or `RuntimeError` with a hint
    when the credentials or the region are missing: checked before any video is read."""
    try:
        session = boto3.Session(region_name=region)
        credentials = session.get_credentials()
    except BotoCoreError as exc:  # a named profile that does not exist, a broken config file
        raise RuntimeError(f"cannot load AWS credentials: {exc}") from exc
    if credentials is None:
        raise RuntimeError(MISSING_CREDENTIALS)
    if not session.region_name:
        raise RuntimeError(MISSING_REGION)
    return session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kvs.camera_sim", description=description())
    parser.add_argument("--stream", required=True, help="KVS stream name (required)")
    parser.add_argument("--video", required=True, type=Path, help="video file to stream (required)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="1 = real time, 0 = as fast as possible (default 1)"
    )
    parser.add_argument("--loop", type=int, default=1, help="times to play the file (default 1)")
    parser.add_argument(
        "--region", default=None,
        help="AWS region of the stream (default: $AWS_REGION, $AWS_DEFAULT_REGION or the profile's)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        session = aws_session(args.region)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.video.is_file():
        print(f"error: video not found: {args.video}", file=sys.stderr)
        return EXIT_USAGE
    try:
        track, packets = h264_packets(args.video)
    except (ValueError, OSError) as exc:
        print(f"error: cannot read video {args.video}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not packets:
        print(f"error: no video frames in {args.video}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = put_media(args.stream, track, packets, speed=args.speed, loops=max(1, args.loop), session=session)
    except ClientError as exc:
        print(f"error: {exc.response.get('Error', {}).get('Code')}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (BotoCoreError, urllib3.exceptions.HTTPError, RuntimeError) as exc:
        print(f"error: PutMedia to {args.stream} failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"stream={args.stream} fragments_sent={result.fragments_sent} bytes_sent={result.bytes_sent} "
        f"persisted={result.persisted} errors={len(result.errors)}"
    )
    return EXIT_FAILED if result.errors else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
