"""The GetMedia reader: one live GetMedia connection per stream, parsed as it arrives, resumed
after every end or break without a gap and without a duplicate.

- `GetDataEndpoint` (5 TPS per stream) is asked once per stream and cached (`EndpointCache`);
  the cache entry is dropped when the endpoint stops answering.
- The body is read in chunks into `MkvStreamParser`; events go out as soon as they are parsed.
- When the response ends (KVS ends sessions after ~40-45 min) having brought something new, the
  reader reconnects at once (after a break, or a session that brought nothing new, with backoff): with the last complete fragment's continuation token, else just after the last complete
  fragment's number, else with the original selector — except `NOW`, which would skip whatever
  arrived between two sessions (a silent camera is polled with backoff, up to `backoff_cap_s`
  apart): a reader that started at `NOW` and has passed nothing on yet reconnects at the server
  timestamp its first session began (`SERVER_TIMESTAMP`, less `NOW_SKEW_S` for clock skew).
  Frames of a fragment already passed on before a break (or before a corruption), and fragments
  up to the last complete one, are skipped when KVS sends them again.
- A session that brings nothing new (no frame, no fragment beyond what was passed on: a fragment
  cut short or corrupt again, replayed) is followed by a backoff (`contracts.retry.backoff_delay`,
  growing until a session brings something new): never a tight reconnect loop (KVS allows 5
  GetMedia calls/s per stream). A fragment cut short is never given up: it is expected whole on a
  later read, and until then it is not complete (no `FragmentEnd`, so no checkpoint past it).
- A corrupt fragment is reported once (`Corruption`); when the stream moves past it, or after
  `corrupt_reads` reads that found it corrupt, it is given up: `FragmentSkipped`, a warning naming
  it and the frames of it passed on, `ReaderStats.fragments_given_up`.
- `ClientLimitExceededException` / throttling / 5xx / connection errors: jittered exponential backoff.
- A camera that sends nothing (empty responses, read timeouts) is reported — a warning, a counter,
  state `silent` — and polled with backoff; it never ends the reader.
- Errors that retrying cannot fix (no such stream, access denied) raise `KvsStreamError`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from contracts.retry import backoff_delay
from kvs.parser import Corruption, Event, FragmentEnd, FragmentMeta, KvsError, MkvFrame, MkvStreamParser

logger = logging.getLogger(__name__)

GET_MEDIA = "GET_MEDIA"
READ_CHUNK_BYTES = 64 * 1024
NOW_SKEW_S = 2.0
"""How far before its first `NOW` session a reader that saw nothing yet reconnects (server
timestamps are KVS's clock, the first session's start is this host's): a fragment read twice is
harmless, one skipped is lost."""
ENDPOINT_TTL_S = 45 * 60.0
FATAL_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "NotAuthorizedException",
        "AccessDeniedException",
        "InvalidArgumentException",
    }
)
THROTTLE_CODES = frozenset(
    {
        "ClientLimitExceededException",
        "ConnectionLimitExceededException",
        "ThrottlingException",
        "LimitExceededException",
    }
)
# GetMedia holds the connection open while the camera sends; a read that waits longer than this
# is a silent camera, and the reader reconnects.
MEDIA_CONFIG = Config(
    connect_timeout=5,
    read_timeout=20,
    retries={"mode": "standard", "total_max_attempts": 1},
    max_pool_connections=128,  # one per camera streaming from the same data endpoint
)
MAX_MEDIA_CLIENTS = 256
CONTROL_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1})
CORRUPT_READS = 3
"""Reads of a fragment that find it corrupt at the same place before it is given up: KVS stores
fragments, so a corruption is almost always in the stored bytes and will not go away; the few
retries (with backoff) cover the rare one made on the way."""


@dataclass(frozen=True)
class FragmentSkipped:
    """The reader gave up on a corrupt fragment: what of it was passed on is all there will be."""

    fragment_number: str
    fragment: FragmentMeta | None
    """Its metadata when frames of it were passed on (None: none were)."""
    frames_passed: int
    reads: int
    """Reads that found it corrupt (0: the stream moved past it)."""
    reason: str


ReaderEvent = Event | FragmentSkipped


class KvsStreamError(RuntimeError):
    """The stream cannot be read and retrying will not help; one line naming the stream."""


class StartSelectorType(StrEnum):
    NOW = "NOW"
    EARLIEST = "EARLIEST"
    FRAGMENT_NUMBER = "FRAGMENT_NUMBER"
    PRODUCER_TIMESTAMP = "PRODUCER_TIMESTAMP"
    SERVER_TIMESTAMP = "SERVER_TIMESTAMP"
    CONTINUATION_TOKEN = "CONTINUATION_TOKEN"


@dataclass(frozen=True)
class StartSelector:
    type: StartSelectorType = StartSelectorType.NOW
    fragment_number: str | None = None
    timestamp: datetime | None = None
    continuation_token: str | None = None

    def __post_init__(self) -> None:
        needs = {
            StartSelectorType.FRAGMENT_NUMBER: self.fragment_number,
            StartSelectorType.PRODUCER_TIMESTAMP: self.timestamp,
            StartSelectorType.SERVER_TIMESTAMP: self.timestamp,
            StartSelectorType.CONTINUATION_TOKEN: self.continuation_token,
        }
        if self.type in needs and needs[self.type] is None:
            raise ValueError(f"start selector {self.type} needs its value")

    def to_api(self) -> dict[str, Any]:
        selector: dict[str, Any] = {"StartSelectorType": str(self.type)}
        if self.type == StartSelectorType.FRAGMENT_NUMBER:
            selector["AfterFragmentNumber"] = self.fragment_number
        elif self.type in (StartSelectorType.PRODUCER_TIMESTAMP, StartSelectorType.SERVER_TIMESTAMP):
            selector["StartTimestamp"] = self.timestamp
        elif self.type == StartSelectorType.CONTINUATION_TOKEN:
            selector["ContinuationToken"] = self.continuation_token
        return selector


class ReaderState(StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    SILENT = "silent"
    BACKING_OFF = "backing_off"
    STOPPED = "stopped"


@dataclass
class ReaderStats:
    connections: int = 0
    reconnects: int = 0
    throttled: int = 0
    connection_errors: int = 0
    silent_periods: int = 0
    fragments: int = 0
    fragments_skipped: int = 0
    frames: int = 0
    frames_replayed_skipped: int = 0
    corruptions: int = 0
    """Corruptions passed on: one per corrupt fragment (the parser's repeats on re-reads are not)."""
    corruptions_repeated: int = 0
    fragments_given_up: int = 0
    no_progress_sessions: int = 0
    kvs_errors: int = 0
    bytes: int = 0
    endpoint_calls: int = 0
    endpoint_latency_s: list[float] = field(default_factory=list, repr=False)


def fragment_key(number: str | None) -> int:
    """Fragment numbers are decimal strings that grow with time; compare them as integers."""
    try:
        return int(number) if number else -1
    except ValueError:
        return -1


class EndpointCache:
    """`GetDataEndpoint` results per (stream, API), kept `ttl_s`; GetDataEndpoint is limited to
    5 TPS per stream, so every reader of a stream in this process shares one answer."""

    def __init__(
        self, client: Any = None, ttl_s: float = ENDPOINT_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self.ttl_s = ttl_s
        self.clock = clock
        self.calls = 0
        self.last_latency_s = 0.0
        self._entries: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("kinesisvideo", config=CONTROL_CONFIG)
        return self._client

    def get(self, stream_name: str, api: str = GET_MEDIA) -> str:
        with self._lock:
            entry = self._entries.get((stream_name, api))
            if entry is not None and self.clock() - entry[1] < self.ttl_s:
                return entry[0]
            started = time.perf_counter()
            url = self.client.get_data_endpoint(StreamName=stream_name, APIName=api)["DataEndpoint"]
            self.last_latency_s = time.perf_counter() - started
            self.calls += 1
            self._entries[(stream_name, api)] = (url, self.clock())
            logger.info("data endpoint stream=%s api=%s url=%s", stream_name, api, url)
            return url

    def invalidate(self, stream_name: str, api: str = GET_MEDIA) -> None:
        with self._lock:
            self._entries.pop((stream_name, api), None)


_SHARED_ENDPOINTS: EndpointCache | None = None


def shared_endpoint_cache() -> EndpointCache:
    global _SHARED_ENDPOINTS
    if _SHARED_ENDPOINTS is None:
        _SHARED_ENDPOINTS = EndpointCache()
    return _SHARED_ENDPOINTS


class GetMediaReader:
    """Events (`MkvFrame`, `FragmentEnd`, `KvsError`, `Corruption`, `FragmentSkipped`) of one stream
    until stopped."""

    def __init__(
        self,
        stream_name: str,
        *,
        start: StartSelector | None = None,
        after_fragment: str | None = None,
        camera_id: str = "-",
        endpoints: EndpointCache | None = None,
        media_client_factory: Callable[[str], Any] | None = None,
        stop_event: threading.Event | None = None,
        chunk_bytes: int = READ_CHUNK_BYTES,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 10.0,
        silent_after_s: float = 10.0,
        corrupt_reads: int = CORRUPT_READS,
        sleep: Callable[[float], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`after_fragment`: a checkpoint; fragments up to and including it are never passed on,
        and without another selector the reader starts just after it."""
        self.stream_name = stream_name
        self.camera_id = camera_id
        if start is None:
            start = (
                StartSelector(StartSelectorType.FRAGMENT_NUMBER, fragment_number=after_fragment)
                if after_fragment
                else StartSelector()
            )
        self.start = start
        self.endpoints = endpoints or shared_endpoint_cache()
        self.media_client_factory = media_client_factory or _media_client
        self.stop_event = stop_event or threading.Event()
        self.chunk_bytes = chunk_bytes
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.silent_after_s = silent_after_s
        self.corrupt_reads = corrupt_reads
        self.sleep = sleep or self.stop_event.wait
        self.clock = clock
        self.wall_clock = wall_clock
        self.stats = ReaderStats()
        self.state = ReaderState.CONNECTING
        self.last_fragment: str | None = after_fragment
        """Number of the last fragment passed on complete, or given up on as corrupt (or the
        checkpoint): nothing up to it is passed on again."""
        self.last_token: str | None = None
        self.keyframes_only = False
        """Set by a source that decodes keyframes only: the parser then passes on no other video
        block (`MkvStreamParser.keyframes_only`; counted in `FragmentMeta.frames_skipped_nonkey`)."""
        self._partial: tuple[str, int] | None = None
        """(fragment number, frames passed on) of a fragment not complete yet (cut off by a break,
        cut short, or corrupt)."""
        self._partial_meta: FragmentMeta | None = None
        self._corrupt: tuple[str, int, str] | None = None
        """(fragment number, reads that found it corrupt, reason) of the corrupt fragment not given
        up yet."""
        self._progress = False
        """The session passed on something new: a frame or a complete fragment."""
        self._failures = 0
        self._last_data = clock()
        self._now_since: float | None = None
        """Epoch seconds when the first `NOW` session began (where a reconnect picks up)."""

    # -- the loop --------------------------------------------------------------------------------

    def events(self) -> Iterator[ReaderEvent]:
        while not self.stop_event.is_set():
            selector = self._next_selector()
            try:
                body = self._connect(selector)
            except ClientError as exc:
                self._client_error(exc)
                continue
            except (BotoCoreError, Urllib3HTTPError, OSError) as exc:
                self._connection_error(f"connect: {exc}", forget_endpoint=True)
                continue
            got_data = False
            self._progress = False
            bytes_before = self.stats.bytes
            try:
                for event in self._read(body):
                    got_data = True
                    yield event
                    if self.stop_event.is_set():
                        break
            except (BotoCoreError, Urllib3HTTPError, OSError, ValueError) as exc:
                self._connection_error(f"read: {exc}")
                continue
            finally:
                body.close()
            if self.stop_event.is_set():
                break
            if self._progress:
                self._failures = 0
                logger.info(
                    "get_media ended camera=%s stream=%s last_fragment=%s: reconnecting",
                    self.camera_id,
                    self.stream_name,
                    self.last_fragment,
                )
            elif got_data or self.stats.bytes > bytes_before:
                # Bytes came but nothing new (frames passed on before, a fragment corrupt or cut
                # short again): reconnecting at once would loop as fast as KVS answers.
                self.stats.no_progress_sessions += 1
                self._back_off(self._no_progress_reason(), quiet=self._corrupt is None and self._partial is None)
            else:
                self._quiet("empty response")
        self.state = ReaderState.STOPPED

    def _connect(self, selector: StartSelector) -> Any:
        self.state = ReaderState.CONNECTING
        if selector.type == StartSelectorType.NOW and self._now_since is None:
            self._now_since = self.wall_clock()
        url = self.endpoints.get(self.stream_name)
        self.stats.endpoint_calls = self.endpoints.calls
        client = self.media_client_factory(url)
        logger.info(
            "get_media camera=%s stream=%s selector=%s", self.camera_id, self.stream_name, selector.to_api()
        )
        response = client.get_media(StreamName=self.stream_name, StartSelector=selector.to_api())
        self.stats.connections += 1
        if self.stats.connections > 1:
            self.stats.reconnects += 1
        return response["Payload"]

    def _read(self, body: Any) -> Iterator[ReaderEvent]:
        parser = MkvStreamParser()
        raw = getattr(body, "_raw_stream", None)
        # urllib3's read1 returns what has arrived (up to the chunk size) instead of waiting for
        # a full chunk: frames go on as soon as their bytes are in.
        read = getattr(raw, "read1", None) or body.read
        while not self.stop_event.is_set():
            try:
                chunk = read(self.chunk_bytes)
            except TimeoutError as exc:
                raise OSError(f"read timeout: {exc}") from exc
            if not chunk:
                yield from self._filter(parser.close())
                return
            self.stats.bytes += len(chunk)
            self._data_arrived()
            parser.keyframes_only = self.keyframes_only
            yield from self._filter(parser.feed(chunk))

    def _filter(self, events: list[Event]) -> Iterator[ReaderEvent]:
        """Pass on what is new: drop fragments up to the last complete one, the frames of a fragment
        that were passed on before a break or a corruption, and the repeats of a corruption."""
        last = fragment_key(self.last_fragment)
        for event in events:
            if isinstance(event, MkvFrame):
                number = event.fragment.fragment_number
                if last >= 0 and fragment_key(number) <= last:
                    continue
                if self._corrupt is not None and fragment_key(number) > fragment_key(self._corrupt[0]):
                    yield from self._give_up(moved_past=True)  # before the next fragment's frames
                    last = fragment_key(self.last_fragment)
                if self._partial is not None and number == self._partial[0]:
                    if event.index < self._partial[1]:
                        self.stats.frames_replayed_skipped += 1
                        continue
                    self._partial = (self._partial[0], event.index + 1)
                elif number is not None:
                    self._partial = (number, event.index + 1)
                self._partial_meta = event.fragment
                self.stats.frames += 1
                self.state = ReaderState.STREAMING
                self._progress = True
                yield event
            elif isinstance(event, FragmentEnd):
                meta = event.fragment
                if last >= 0 and fragment_key(meta.fragment_number) <= last:
                    self.stats.fragments_skipped += 1
                    logger.debug(
                        "fragment already read camera=%s fragment=%s", self.camera_id, meta.fragment_number
                    )
                    continue
                if self._corrupt is not None and meta.fragment_number == self._corrupt[0]:
                    logger.info(  # a re-read found it whole: the corruption was on the way
                        "corrupt fragment read whole camera=%s fragment=%s", self.camera_id, meta.fragment_number
                    )
                    self._corrupt = None
                elif self._corrupt is not None and fragment_key(meta.fragment_number) > fragment_key(
                    self._corrupt[0]
                ):
                    yield from self._give_up(moved_past=True)
                self.stats.fragments += 1
                if meta.fragment_number is not None:
                    self.last_fragment = meta.fragment_number
                    last = fragment_key(meta.fragment_number)
                self.last_token = meta.continuation_token or self.last_token
                self._partial = None
                self._partial_meta = None
                self._progress = True
                yield event
            elif isinstance(event, Corruption):
                number = event.fragment_number
                if number is not None and last >= 0 and fragment_key(number) <= last:
                    self.stats.corruptions_repeated += 1  # a fragment given up on, sent again
                    continue
                if number is not None and self._corrupt is not None and self._corrupt[0] == number:
                    self.stats.corruptions_repeated += 1
                    self._corrupt = (number, self._corrupt[1] + 1, self._corrupt[2])
                else:
                    if self._corrupt is not None and number is not None:
                        yield from self._give_up(moved_past=True)
                    self.stats.corruptions += 1
                    if number is not None:
                        self._corrupt = (number, 1, event.reason)
                    yield event  # reported once per fragment
                if self._corrupt is not None and self._corrupt[1] >= self.corrupt_reads:
                    yield from self._give_up(moved_past=False)
                    last = fragment_key(self.last_fragment)
            elif isinstance(event, KvsError):
                self.stats.kvs_errors += 1
                logger.warning(
                    "kvs error camera=%s stream=%s fragment=%s code=%s id=%s",
                    self.camera_id,
                    self.stream_name,
                    event.fragment_number,
                    event.code,
                    event.error_id,
                )
                yield event

    def _give_up(self, *, moved_past: bool) -> Iterator[FragmentSkipped]:
        """Stop waiting for the rest of the corrupt fragment: say so (a warning, a counter, an event)
        and never pass on anything more of it."""
        assert self._corrupt is not None
        number, reads, reason = self._corrupt
        self._corrupt = None
        frames = 0
        meta = None
        if self._partial is not None and self._partial[0] == number:
            frames, meta = self._partial[1], self._partial_meta
            self._partial = None
            self._partial_meta = None
        self.stats.fragments_given_up += 1
        logger.warning(
            "corrupt fragment skipped camera=%s stream=%s fragment=%s: %s (%s); %d frame(s) of it were "
            "passed on, the rest of it is lost",
            self.camera_id,
            self.stream_name,
            number,
            "the stream moved past it" if moved_past else f"corrupt in {reads} reads",
            reason,
            frames,
        )
        if fragment_key(number) > fragment_key(self.last_fragment):
            self.last_fragment = number
            # Its end tags (and token) never came: the next session starts at its number, and
            # `_filter` drops it if KVS sends it again.
            self.last_token = None
        yield FragmentSkipped(number, meta, frames, 0 if moved_past else reads, reason)

    def _no_progress_reason(self) -> str:
        if self._corrupt is not None:
            return f"fragment {self._corrupt[0]} corrupt again (read {self._corrupt[1]} of {self.corrupt_reads})"
        if self._partial is not None:
            return f"fragment {self._partial[0]} cut short again after {self._partial[1]} frame(s)"
        return f"nothing new after fragment {self.last_fragment}"

    def _next_selector(self) -> StartSelector:
        if self.last_token is not None:
            # The token of the last complete fragment: KVS starts after it; frames of a fragment
            # cut off meanwhile come again and `_filter` drops those already passed on.
            return StartSelector(StartSelectorType.CONTINUATION_TOKEN, continuation_token=self.last_token)
        if self.last_fragment is not None:
            # FRAGMENT_NUMBER: KVS sends that fragment again or starts after it; either way
            # `_filter` passes on only what comes after it.
            return StartSelector(StartSelectorType.FRAGMENT_NUMBER, fragment_number=self.last_fragment)
        if self._partial is not None:
            return StartSelector(StartSelectorType.FRAGMENT_NUMBER, fragment_number=self._partial[0])
        if self.start.type == StartSelectorType.NOW and self._now_since is not None:
            since = datetime.fromtimestamp(self._now_since - NOW_SKEW_S, UTC)
            return StartSelector(StartSelectorType.SERVER_TIMESTAMP, timestamp=since)
        return self.start

    # -- trouble ---------------------------------------------------------------------------------

    def _client_error(self, exc: ClientError) -> None:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in FATAL_CODES:
            raise KvsStreamError(
                f"cannot read KVS stream {self.stream_name}: {code}: {_message(exc)}"
            ) from None
        if code in THROTTLE_CODES or status == 429:
            self.stats.throttled += 1
            self._back_off(f"throttled ({code})")
            return
        self._connection_error(f"{code or status}: {_message(exc)}", forget_endpoint=status >= 500)

    def _connection_error(self, reason: str, forget_endpoint: bool = False) -> None:
        self.stats.connection_errors += 1
        if forget_endpoint:  # a broken read is a session end, not a stale endpoint
            self.endpoints.invalidate(self.stream_name)
        if self._partial is not None:
            logger.info(
                "fragment cut off camera=%s fragment=%s after %d frame(s)",
                self.camera_id,
                self._partial[0],
                self._partial[1],
            )
        self._back_off(reason)

    def _quiet(self, reason: str) -> None:
        self._back_off(reason, quiet=True)

    def _data_arrived(self) -> None:
        if self.state == ReaderState.SILENT:
            logger.info("camera back camera=%s stream=%s", self.camera_id, self.stream_name)
        self._last_data = self.clock()
        self.state = ReaderState.STREAMING

    def _back_off(self, reason: str, quiet: bool = False) -> None:
        delay = backoff_delay(self._failures, self.backoff_base_s, self.backoff_cap_s)
        self._failures += 1
        if self.state != ReaderState.SILENT:
            self.state = ReaderState.BACKING_OFF
        log = logger.debug if quiet else logger.warning
        log(
            "get_media camera=%s stream=%s: %s; retrying in %.2f s (attempt %d)",
            self.camera_id,
            self.stream_name,
            reason,
            delay,
            self._failures,
        )
        if self.clock() - self._last_data >= self.silent_after_s and self.state != ReaderState.SILENT:
            self.state = ReaderState.SILENT
            self.stats.silent_periods += 1
            logger.warning(
                "camera silent camera=%s stream=%s: no media for %.0f s",
                self.camera_id,
                self.stream_name,
                self.clock() - self._last_data,
            )
        self.sleep(delay)


_MEDIA_CLIENTS: dict[str, Any] = {}
_MEDIA_CLIENTS_LOCK = threading.Lock()


def _media_client(endpoint_url: str) -> Any:
    """The process's `kinesis-video-media` client for a data endpoint, made once: a boto3 client costs
    ~10-20 ms to build, paid before by every camera at every reconnect. Clients are thread-safe, and
    each GetMedia response holds its own pooled connection (`MEDIA_CONFIG.max_pool_connections`)."""
    with _MEDIA_CLIENTS_LOCK:  # building clients from the default session is not thread-safe
        client = _MEDIA_CLIENTS.get(endpoint_url)
        if client is None:
            if len(_MEDIA_CLIENTS) >= MAX_MEDIA_CLIENTS:  # endpoints came and went: start afresh
                _MEDIA_CLIENTS.clear()
            client = _MEDIA_CLIENTS[endpoint_url] = boto3.client(
                "kinesis-video-media", endpoint_url=endpoint_url, config=MEDIA_CONFIG
            )
        return client


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
