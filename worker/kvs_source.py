"""`KvsSource`: the `FrameSource` of a Kinesis Video Stream. The rest of the worker cannot tell it
from `AvSource`: it yields sampled frames with their capture time.

Per frame: the producer timestamp of its fragment plus the block's offset is the media time
(`pts_s`, epoch seconds) and `captured_at`; the fragment number rides along for checkpoints.

Least work per frame: once two keyframes are seen, if the keyframe interval is no longer than the
sampling interval, only keyframes are decoded (KVS fragments start with one) and non-key blocks are
not even passed on by the parser (nor copied out of the response); a keyframe the sampler would not
keep is not decoded either.
Otherwise (and before the interval is known) blocks wait undecoded until one of them is due: then
the waiting blocks of the GOP are decoded up to it, and only sampled pictures are kept (converted to
the small images the stages need, `worker.picture`, never to full-resolution RGB unless an alert's
snapshot asks for it).
Blocks still waiting when the next keyframe (or fragment) comes are never decoded
(`frames_skipped_unsampled`): at 1 fps with 1 s GOPs the first GOP costs its keyframe, not 30 frames."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import av
from botocore.exceptions import BotoCoreError, ClientError

from kvs.parser import Corruption, FragmentEnd, FragmentMeta, KvsError, MkvFrame, is_video_track
from kvs.reader import (
    EndpointCache,
    FragmentSkipped,
    GetMediaReader,
    KvsStreamError,
    StartSelector,
    StartSelectorType,
    shared_endpoint_cache,
)
from worker.checkpoints import Checkpoint, CheckpointStore, FragmentProgress, order_key
from worker.config import WorkerConfig
from worker.decoder import FrameDecoder
from worker.picture import Picture
from worker.prefetch import prefetched
from worker.sampler import FrameSampler
from worker.sources import Frame, FrameSource, SourceError, SourceStats

logger = logging.getLogger(__name__)

KVS_SCHEME = "kvs://"
PREFETCH_EVENTS = 16
"""Parsed events the GetMedia reader may run ahead of the decoder (its own thread): half a second
of 30 fps blocks, or 8 fragments in keyframes-only mode (a keyframe and its end each: ~1 MB at
720p, ~8 MB at 4K per camera when the decoder falls behind). Overlap needs only one fragment: 8
and 64 gave the same throughput (`make bench-worker`); a full queue stops the reading, so a camera
the task cannot keep up with lags (`FrameLagSeconds`) instead of filling memory."""
_EPSILON_S = 1e-3


def kvs_stream_name(source: str) -> str | None:
    """`kvs://<stream-name>` -> the stream name; None for other sources."""
    if not source.lower().startswith(KVS_SCHEME):
        return None
    name = source[len(KVS_SCHEME) :].strip("/")
    return name or None


@dataclass
class KvsSourceStats(SourceStats):
    fragments_read: int = 0
    fragments_corrupt: int = 0
    fragments_skipped_corrupt: int = 0
    """Corrupt fragments the reader gave up on (`FragmentSkipped`): the rest of each is lost."""
    frames_skipped_nonkey: int = 0
    frames_skipped_unsampled: int = 0
    frames_unsupported: int = 0
    kvs_errors: int = 0
    last_fragment: str | None = None
    last_producer_timestamp: float | None = None


class KvsSource(FrameSource):
    def __init__(
        self,
        stream_name: str,
        *,
        sample_fps: float,
        camera_id: str = "-",
        start: StartSelector | None = None,
        after_fragment: str | None = None,
        stop_event: threading.Event | None = None,
        endpoints: EndpointCache | None = None,
        reader: GetMediaReader | None = None,
        on_fragment: Callable[[FragmentMeta], None] | None = None,
        on_fragment_skipped: Callable[[FragmentSkipped], None] | None = None,
        on_fragment_start: Callable[[str, float | None], None] | None = None,
        keyframes_only: bool | None = None,
        preroll_through: str | None = None,
        sampler_due_s: float | None = None,
    ) -> None:
        """`after_fragment`: resume after this checkpointed fragment. `on_fragment`: called once
        every frame of a fragment has been handed over (checkpoints); never for a fragment cut
        short or corrupt. `on_fragment_skipped`: called when the reader gives up on a corrupt
        fragment (what of it was handed over is all there will be). `keyframes_only`: force the
        decode mode (None: choose from the keyframe interval). `on_fragment_start`: the first video
        block of a fragment reached the sampler, whose schedule it is given (checkpoints' pre-roll).
        `preroll_through`: frames of this fragment and those before it are marked `preroll` (a restart
        reading them again for the model's history); `sampler_due_s`: the sampler's schedule to start
        with (where the run being resumed stood)."""
        self.stream_name = stream_name
        self.camera_id = camera_id
        self.stop_event = stop_event or threading.Event()
        self.endpoints = endpoints or shared_endpoint_cache()
        self.reader = reader or GetMediaReader(
            stream_name,
            start=start,
            after_fragment=after_fragment,
            camera_id=camera_id,
            endpoints=self.endpoints,
            stop_event=self.stop_event,
        )
        self.on_fragment = on_fragment
        self.on_fragment_skipped = on_fragment_skipped
        self.on_fragment_start = on_fragment_start
        self.sampler = FrameSampler(sample_fps)
        self.sampler.next_due_s = sampler_due_s
        self._preroll_key = order_key(preroll_through) if preroll_through else None
        self._current_fragment: str | None = None
        self.decoder = FrameDecoder(camera_id)
        self.stats = KvsSourceStats()
        self._forced_mode = keyframes_only
        self.stats.keyframes_only = self.reader.keyframes_only = bool(keyframes_only)
        self._last_keyframe_s: float | None = None
        self._pending: dict[int, MkvFrame] = {}
        """Blocks handed to the decoder whose picture has not come out yet, by pts (ms)."""
        self._deferred: list[MkvFrame] = []
        """Blocks of the current GOP not decoded yet, none of them due so far."""
        self._awaiting = False
        """A due block was decoded and its sampled picture has not come out yet (reordering)."""
        self._index = 0

    def open(self) -> None:
        """Fail fast when the stream does not exist or cannot be reached (`SourceError`)."""
        try:
            self.endpoints.get(self.stream_name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", "")
            raise SourceError(f"cannot open KVS stream {self.stream_name}: {code}: {message}") from None
        except BotoCoreError as exc:
            raise SourceError(f"cannot reach KVS for stream {self.stream_name}: {exc}") from None
        logger.info("source opened camera=%s source=kvs://%s", self.camera_id, self.stream_name)

    def close(self) -> None:
        self.stop_event.set()

    def frames(self) -> Iterator[Frame]:
        events = prefetched(
            self.reader.events(), maxsize=PREFETCH_EVENTS, name=f"kvs-{self.camera_id}", stop_event=self.stop_event
        )
        try:
            for event in events:
                if isinstance(event, MkvFrame):
                    yield from self._frame(event)
                elif isinstance(event, FragmentEnd):
                    yield from self._fragment_end(event.fragment)
                elif isinstance(event, Corruption):
                    self.stats.fragments_corrupt += 1
                    self._pending.clear()
                    self._drop_deferred()
                    self.decoder.flush()
                    self._sync_decoder_stats()
                elif isinstance(event, FragmentSkipped):
                    self.stats.fragments_skipped_corrupt += 1
                    if self.on_fragment_skipped is not None:
                        self.on_fragment_skipped(event)
                elif isinstance(event, KvsError):
                    self.stats.kvs_errors += 1
                if self.stop_event.is_set():
                    return
        except KvsStreamError as exc:
            raise SourceError(str(exc)) from None
        finally:
            events.close()

    # -- per block -------------------------------------------------------------------------------

    def _frame(self, block: MkvFrame) -> Iterator[Frame]:
        if not is_video_track(block.fragment.tracks.get(block.track)):
            return
        number = block.fragment.fragment_number
        if number != self._current_fragment:
            self._current_fragment = number
            if self.on_fragment_start is not None and number is not None:
                self.on_fragment_start(number, self.sampler.next_due_s)
        pts_s = _media_time_s(block)
        if block.keyframe:
            self._keyframe_at(pts_s)
            self._drop_deferred()  # a new GOP: the last one's waiting blocks are not needed
        if self.stats.keyframes_only:
            if not block.keyframe:
                self.stats.frames_skipped_nonkey += 1
                return
            if not self.sampler.accept(pts_s):
                return
            pictures = self.decoder.decode(block, alone=True)
            self._sync_decoder_stats()
            for picture in pictures:
                yield self._make_frame(picture, block, pts_s)
            return
        if not self._awaiting and not self.sampler.due(pts_s):
            self._deferred.append(block)
            return
        self._awaiting = True
        blocks, self._deferred = [*self._deferred, block], []
        for one in blocks:
            self._pending[one.timecode_ns // 1_000_000] = one
            pictures = self.decoder.decode(one)
            self._sync_decoder_stats()
            yield from self._sampled(pictures)

    def _drop_deferred(self) -> None:
        self.stats.frames_skipped_unsampled += len(self._deferred)
        self._deferred.clear()

    def _sampled(self, pictures: list[av.VideoFrame]) -> Iterator[Frame]:
        for picture in pictures:
            block = self._pending.pop(picture.pts, None) if picture.pts is not None else None
            if block is None:
                continue
            pts_s = _media_time_s(block)
            if self.sampler.accept(pts_s):
                self._awaiting = False
                yield self._make_frame(picture, block, pts_s)

    def _fragment_end(self, meta: FragmentMeta) -> Iterator[Frame]:
        self._drop_deferred()  # the next fragment starts with a keyframe
        if self._pending:  # pictures held back by reordering: the next fragment starts afresh
            yield from self._sampled(self.decoder.flush())
            self._sync_decoder_stats()
            self._pending.clear()
        self.stats.fragments_read += 1
        self.stats.frames_skipped_nonkey += meta.frames_skipped_nonkey  # the parser's, never passed on
        self.stats.last_fragment = meta.fragment_number
        self.stats.last_producer_timestamp = meta.producer_timestamp
        logger.debug(
            "fragment read camera=%s fragment=%s frames=%d millis_behind_now=%s",
            self.camera_id,
            meta.fragment_number,
            meta.frame_count,
            meta.millis_behind_now,
        )
        if self.on_fragment is not None:
            self.on_fragment(meta)

    def _make_frame(self, picture: av.VideoFrame, block: MkvFrame, pts_s: float) -> Frame:
        self.stats.frames_sampled += 1
        self._index += 1
        return Frame(
            picture=Picture(picture),
            pts_s=pts_s,
            captured_at=datetime.fromtimestamp(pts_s, UTC),
            index=self._index - 1,
            keyframe=block.keyframe,
            fragment_number=block.fragment.fragment_number,
            preroll=self._in_preroll(block.fragment.fragment_number),
        )

    def _in_preroll(self, number: str | None) -> bool:
        if self._preroll_key is None or number is None:
            return False
        if order_key(number) <= self._preroll_key:
            return True
        self._preroll_key = None  # past the checkpoint: nothing before it comes again
        return False

    def _keyframe_at(self, pts_s: float) -> None:
        if self._forced_mode is not None:
            return
        last, self._last_keyframe_s = self._last_keyframe_s, pts_s
        if last is None or pts_s <= last:
            return
        interval = pts_s - last
        keyframes_only = interval <= self.sampler.interval_s + _EPSILON_S
        self.stats.keyframe_interval_s = interval
        if keyframes_only != self.stats.keyframes_only:
            self.stats.keyframes_only = self.reader.keyframes_only = keyframes_only
            logger.info(
                "decode mode camera=%s keyframes_only=%s keyframe_interval_s=%.3f sample_interval_s=%.3f",
                self.camera_id,
                keyframes_only,
                interval,
                self.sampler.interval_s,
            )

    def _sync_decoder_stats(self) -> None:
        self.stats.frames_decoded = self.decoder.frames_decoded
        self.stats.decode_errors = self.decoder.decode_errors + self.stats.fragments_corrupt
        self.stats.frames_unsupported = self.decoder.frames_unsupported


def _media_time_s(block: MkvFrame) -> float:
    """Producer time of the block (epoch seconds); the block timecode when the tag is missing."""
    produced = block.producer_time_s
    return produced if produced is not None else block.timecode_ns / 1e9


@dataclass
class KvsSetup:
    source: KvsSource
    progress: FragmentProgress
    checkpoint: Checkpoint | None = None
    """The checkpoint resumed after (its `policy` is the alert policy's state to take up)."""


def is_kvs(source: str) -> bool:
    return kvs_stream_name(source) is not None


def checkpoint_callbacks(progress: FragmentProgress) -> dict[str, Callable[..., None]]:
    """`KvsSource`'s `on_fragment` and `on_fragment_skipped` for the checkpoints: a complete
    fragment is read; so is a corrupt one given up on (reported lost, the checkpoint may pass it).
    A fragment cut short is neither: the checkpoint stays before it until it comes whole."""

    def fragment_read(meta: FragmentMeta) -> None:
        progress.fragment_read(meta.fragment_number, meta.continuation_token, meta.producer_timestamp)

    def fragment_skipped(skipped: FragmentSkipped) -> None:
        meta = skipped.fragment
        progress.fragment_read(skipped.fragment_number, None, meta.producer_timestamp if meta else None)

    return {
        "on_fragment": fragment_read,
        "on_fragment_skipped": fragment_skipped,
        "on_fragment_start": progress.fragment_started,
    }


def build_kvs_source(config: WorkerConfig, stop_event: threading.Event) -> KvsSetup:
    """The KVS source of a worker config, resuming after the camera's checkpoint, and the progress
    tracker that advances it; opened here, so a missing stream fails before any thread starts."""
    stream = kvs_stream_name(config.source)
    if stream is None:
        raise SourceError(f"not a KVS source: {config.source}")
    store = CheckpointStore(config.kvs.state_table) if config.kvs.checkpoints else None
    checkpoint = None
    if store is not None:
        try:
            checkpoint = store.load(config.camera_id)
        except (ClientError, BotoCoreError) as exc:
            raise SourceError(f"cannot read the checkpoint of camera {config.camera_id}: {exc}") from None
    history = config.kvs.history_frames
    preroll = checkpoint is not None and checkpoint.history_from is not None and history > 0
    if checkpoint is not None:
        logger.info(
            "resuming camera=%s after fragment=%s (checkpoint of %s)%s",
            config.camera_id,
            checkpoint.fragment_number,
            checkpoint.updated_at,
            f", pre-roll from fragment={checkpoint.history_from}" if preroll else "",
        )
    progress = FragmentProgress(config.camera_id, store=store, resumed=checkpoint, history_frames=history)
    if checkpoint is None:
        start, after = StartSelector(StartSelectorType(config.kvs.start)), None
    elif preroll:  # from the fragment of the oldest frame the model's history needs, inclusive
        start, after = StartSelector(StartSelectorType.FRAGMENT_NUMBER, fragment_number=checkpoint.history_from), None
    else:
        start, after = None, checkpoint.fragment_number
    source = KvsSource(
        stream,
        sample_fps=config.sample_fps,
        camera_id=config.camera_id,
        start=start,
        after_fragment=after,
        stop_event=stop_event,
        preroll_through=checkpoint.fragment_number if preroll else None,
        sampler_due_s=checkpoint.history_due_s if preroll else None,
        **checkpoint_callbacks(progress),
    )
    source.open()
    return KvsSetup(source=source, progress=progress, checkpoint=checkpoint)
