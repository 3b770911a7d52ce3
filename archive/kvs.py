"""Clips from Kinesis Video Streams archived media, without a second live `GetMedia` connection.

1. `GetDataEndpoint` (APIName `LIST_FRAGMENTS`, `GET_CLIP`), cached per stream and API: it is
   limited to 5 TPS per stream.
2. `ListFragments` (producer timestamps) tells what the stream holds in the range: fragments are
   sorted (the API does not sort them), a hole between two fragments splits the range into
   continuous runs (never padded), and each run is split again so that one `GetClip` stays within
   its limits (the first 100 MB or 200 fragments of a range are all it returns).
3. `GetClip` per run returns an MP4 made by KVS from the fragments, no re-encoding; the bytes are
   checked with PyAV before they are archived.

Fragments still arriving (the range ends moments ago) show as `ResourceNotFoundException` from
`GetClip` or as a fragment list that stops short of the range's end: both are retried, a bounded
number of times with backoff, then the footage there is is archived (or an `ArchiveError` raised).

Endpoints: the data endpoint `GetDataEndpoint` returns is used, unless boto3 is configured with an
endpoint for `kinesis-video-archived-media` (`AWS_ENDPOINT_URL_KINESIS_VIDEO_ARCHIVED_MEDIA`, or
the global `AWS_ENDPOINT_URL` of a local stack): then that one is (boto3's own convention).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from archive.clip_source import ClipSource, FetchedClip
from archive.errors import ArchiveError
from archive.local_cut import probe_clip
from contracts.retry import NO_BOTOCORE_RETRIES, backoff_delay, is_retryable

logger = logging.getLogger(__name__)

MAX_CLIP_FRAGMENTS = 200
MAX_CLIP_BYTES = 100 * 1024 * 1024
MAX_FRAGMENT_S = 10.0  # PutMedia fragments are at most 10 s: look this far back for the first one
ENV_ARCHIVED_MEDIA_ENDPOINT = "AWS_ENDPOINT_URL_KINESIS_VIDEO_ARCHIVED_MEDIA"
ENV_GLOBAL_ENDPOINT = "AWS_ENDPOINT_URL"
RETRY_CODES = frozenset({"ResourceNotFoundException", "ClientLimitExceededException"})


@dataclass(frozen=True)
class Fragment:
    """One fragment as `ListFragments` describes it (producer timestamps)."""

    number: str
    start: datetime
    duration_s: float
    size_bytes: int

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration_s)

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> Fragment:
        return cls(
            number=str(item["FragmentNumber"]),
            start=item["ProducerTimestamp"].astimezone(UTC),
            duration_s=int(item["FragmentLengthInMilliseconds"]) / 1000.0,
            size_bytes=int(item["FragmentSizeInBytes"]),
        )


@dataclass(frozen=True)
class FragmentRun:
    """Continuous fragments that one `GetClip` can return whole."""

    fragments: tuple[Fragment, ...]

    @property
    def start(self) -> datetime:
        return self.fragments[0].start

    @property
    def end(self) -> datetime:
        return self.fragments[-1].end

    @property
    def size_bytes(self) -> int:
        return sum(f.size_bytes for f in self.fragments)


def plan_fragment_runs(
    fragments: Iterable[Fragment],
    start: datetime,
    end: datetime,
    *,
    max_fragments: int = MAX_CLIP_FRAGMENTS,
    max_bytes: int = MAX_CLIP_BYTES,
    gap_tolerance_s: float = 0.5,
) -> list[FragmentRun]:
    """The fragments overlapping [start, end), sorted and de-duplicated, cut into runs: at every hole
    longer than `gap_tolerance_s`, and wherever a run would pass `max_fragments` or `max_bytes`."""
    unique = {f.number: f for f in fragments if f.start < end and f.end > start}
    ordered = sorted(unique.values(), key=lambda f: (f.start, f.number))
    runs: list[list[Fragment]] = []
    for fragment in ordered:
        current = runs[-1] if runs else None
        if (
            current is None
            or (fragment.start - current[-1].end).total_seconds() > gap_tolerance_s
            or len(current) >= max_fragments
            or sum(f.size_bytes for f in current) + fragment.size_bytes > max_bytes
        ):
            runs.append([fragment])
        else:
            current.append(fragment)
    return [FragmentRun(tuple(run)) for run in runs]


def _error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


class KvsArchivedMedia:
    """`GetDataEndpoint` (cached), `ListFragments` and `GetClip`, with bounded retries."""

    def __init__(
        self,
        kvs_client: Any = None,
        *,
        session: boto3.session.Session | None = None,
        max_attempts: int = 5,
        retry_base_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = session or boto3.session.Session()
        self.kvs = kvs_client or self.session.client("kinesisvideo", config=NO_BOTOCORE_RETRIES)
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.sleep = sleep
        self._lock = threading.Lock()
        self._endpoints: dict[tuple[str, str], str] = {}
        self._clients: dict[str, Any] = {}
        self.endpoint_calls = 0

    def data_endpoint(self, stream_name: str, api_name: str) -> str:
        with self._lock:
            cached = self._endpoints.get((stream_name, api_name))
            if cached is None:
                try:
                    cached = self.kvs.get_data_endpoint(StreamName=stream_name, APIName=api_name)["DataEndpoint"]
                except (ClientError, BotoCoreError) as exc:
                    raise ArchiveError(f"GetDataEndpoint {api_name} for stream {stream_name} failed: {exc}") from exc
                self.endpoint_calls += 1
                self._endpoints[(stream_name, api_name)] = cached
            return cached

    def _client(self, stream_name: str, api_name: str) -> Any:
        endpoint = self.data_endpoint(stream_name, api_name)
        configured = os.environ.get(ENV_ARCHIVED_MEDIA_ENDPOINT) or os.environ.get(ENV_GLOBAL_ENDPOINT)
        url = None if configured else endpoint
        with self._lock:
            client = self._clients.get(url or "")
            if client is None:
                client = self.session.client(
                    "kinesis-video-archived-media", endpoint_url=url, config=NO_BOTOCORE_RETRIES
                )
                self._clients[url or ""] = client
            return client

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        for attempt in range(self.max_attempts):
            try:
                return fn()
            except (ClientError, BotoCoreError) as exc:
                retry = _error_code(exc) in RETRY_CODES or is_retryable(exc)
                if not retry or attempt + 1 >= self.max_attempts:
                    raise ArchiveError(f"{what} failed after {attempt + 1} attempt(s): {exc}") from exc
                delay = backoff_delay(attempt, self.retry_base_s)
                logger.info("%s: %s, retrying in %.2fs", what, _error_code(exc) or exc, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")

    def list_fragments(self, stream_name: str, start: datetime, end: datetime) -> list[Fragment]:
        """Every fragment whose producer timestamp is in [start, end], in no particular order."""
        client = self._client(stream_name, "LIST_FRAGMENTS")
        selector = {
            "FragmentSelectorType": "PRODUCER_TIMESTAMP",
            "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end},
        }
        fragments: list[Fragment] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"StreamName": stream_name, "FragmentSelector": selector, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self._call(f"ListFragments of stream {stream_name}", lambda kw=kwargs: client.list_fragments(**kw))
            fragments.extend(Fragment.from_api(item) for item in page.get("Fragments", []))
            token = page.get("NextToken")
            if not token:
                return fragments

    def get_clip(self, stream_name: str, first_start: datetime, last_start: datetime) -> bytes:
        """MP4 bytes of the fragments starting in [first_start, last_start] (`GetClip` compares both
        ends with fragment start times; the end must be later than the start, hence + 1 ms)."""
        client = self._client(stream_name, "GET_CLIP")
        selector = {
            "FragmentSelectorType": "PRODUCER_TIMESTAMP",
            "TimestampRange": {"StartTimestamp": first_start, "EndTimestamp": last_start + timedelta(milliseconds=1)},
        }
        what = f"GetClip of stream {stream_name} {first_start.isoformat()}..{last_start.isoformat()}"
        response = self._call(what, lambda: client.get_clip(StreamName=stream_name, ClipFragmentSelector=selector))
        return response["Payload"].read()


class KvsClipSource(ClipSource):
    """One camera's KVS stream. Waits (bounded) for fragments of a range that ended moments ago."""

    def __init__(
        self,
        stream_name: str,
        media: KvsArchivedMedia | None = None,
        *,
        gap_tolerance_s: float = 0.5,
        arrival_window_s: float = 60.0,
        max_fragments: int = MAX_CLIP_FRAGMENTS,
        max_bytes: int = MAX_CLIP_BYTES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = f"kvs:{stream_name}"
        self.stream_name = stream_name
        self.media = media or KvsArchivedMedia()
        self.gap_tolerance_s = gap_tolerance_s
        self.arrival_window_s = arrival_window_s
        self.max_fragments = max_fragments
        self.max_bytes = max_bytes
        self.clock = clock

    def plan(self, start: datetime, end: datetime) -> list[FragmentRun]:
        """The runs to fetch; waits while a recent range's last fragments are still arriving."""
        media = self.media
        runs: list[FragmentRun] = []
        for attempt in range(media.max_attempts):
            listed = media.list_fragments(self.stream_name, start - timedelta(seconds=MAX_FRAGMENT_S), end)
            runs = plan_fragment_runs(
                listed, start, end, max_fragments=self.max_fragments, max_bytes=self.max_bytes,
                gap_tolerance_s=self.gap_tolerance_s,
            )
            complete = bool(runs) and (end - runs[-1].end).total_seconds() <= self.gap_tolerance_s
            recent = (self.clock() - end).total_seconds() < self.arrival_window_s
            if complete or not recent or attempt + 1 >= media.max_attempts:
                break
            delay = backoff_delay(attempt, media.retry_base_s)
            logger.info("stream %s: fragments up to %s still arriving, retrying in %.2fs",
                        self.stream_name, end.isoformat(), delay)
            media.sleep(delay)
        if not runs:
            raise ArchiveError(
                f"no fragments in stream {self.stream_name} for {start.isoformat()}..{end.isoformat()}"
            )
        return runs

    def fetch(self, start: datetime, end: datetime, workdir: Path) -> list[FetchedClip]:
        clips = []
        runs = self.plan(start, end)
        if len(runs) > 1:
            logger.info("stream %s: %s..%s split into %d clips (gaps or GetClip limits)",
                        self.stream_name, start.isoformat(), end.isoformat(), len(runs))
        for index, run in enumerate(runs):
            data = self.media.get_clip(self.stream_name, run.start, run.fragments[-1].start)
            path = workdir / f"kvs-{index}.mp4"
            path.write_bytes(data)
            what = f"GetClip of stream {self.stream_name} at {run.start.isoformat()} ({len(data)} bytes)"
            clips.append(FetchedClip(path=path, start=run.start, end=run.end, probe=probe_clip(path, what)))
        return clips

