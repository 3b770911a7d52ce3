"""The worker's two threads and the bounded queue between them.

    reader:   source (decode + sample) -> motion gate -> queue (full: drop the frame, count it)
    analyser: queue -> detector (batched) -> alert policy -> snapshot -> publisher
              (and each score into the camera's `ScoreHistory`: an alert's trace, next to its clip)

At the live edge the reader never blocks on the analyser: a slow endpoint costs frames
(`frames_dropped`), never latency that creeps up. A frame older than `live_edge_s` (a catch-up after
a restart or an outage) waits for room instead: a backlog is analysed whole, and a checkpoint never
passes a frame that was not analysed, except one dropped at the live edge. After a KVS restart the
frames read again before the checkpoint (`Frame.preroll`) only rebuild the gate's reference and the
model's history. Nothing after the detector drops anything: every alert the policy raises
is spooled for the publisher's sender thread, or logged at ERROR with its JSON. `stop()` sets the
stop event, joins the reader then the analyser, and flushes and closes the publisher.

Frames travel as decoded pictures (`worker.picture`): the gate and the detector each take the small
image they need from one, and full-resolution RGB is made only for an alert's snapshot.

The camera's scene (`contracts.camera_scene`) comes from a provider, a zero-argument callable the
reader calls once per sampled frame (default: `config.scene`; a deployment may pass one that reads
the state table). The reader masks the frame with it (`worker.privacy`: black before the gate, the
endpoint and the snapshot), runs the tamper checks on it (`worker.tamper`, every sampled frame) and
hands it on with the frame, so the policy places the frame's regions in the zones it was masked
with. A tamper alert raised by the reader waits in a small queue for the analyser, which publishes
it as it does the policy's (its fragment is held until then, as a queued frame's is); the analyser
also raises `no_signal` while a KVS source is silent."""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from archive.archiver import Archiver
from archive.clip_source import LocalClipSource
from archive.errors import ArchiveError
from archive.keys import alert_clip_ref
from archive.kvs import KvsClipSource
from archive.runner import ClipArchiveRunner
from archive.schedule import ArchiveScheduler, ClipRequest
from archive.scores import ScoreHistory
from contracts.alert import AlertRecord
from contracts.camera_scene import CameraScene
from contracts.score_trace import ScoreTrace
from worker.camera_status import CameraStatusReporter, LastAnalysed, status_reporter
from worker.checkpoints import FragmentProgress
from worker.config import WorkerConfig
from worker.detector import Detector, DetectorError, SageMakerDetector
from worker.kvs_source import build_kvs_source, is_kvs, kvs_stream_name
from worker.motion import MotionGate
from worker.policy import AlertPolicy
from worker.privacy import PrivacyMasker
from worker.publisher import AlertPublisher
from worker.snapshot import SnapshotWriter
from worker.sources import AvSource, Frame, FrameSource
from worker.spool import AlertSpool
from worker.tamper import TamperMonitor

logger = logging.getLogger(__name__)

QUEUE_POLL_S = 0.1  # how often a waiting thread looks at the stop event
DROP_LOG_EVERY = 100

SceneProvider = Callable[[], CameraScene]
"""Returns the camera's current scene; called once per sampled frame, so it must be cheap (cache)."""


@dataclass
class WorkerStats:
    """Counters of one run; written as JSON by `--stats-out`. Sampled frames end up in exactly one
    of gated, analysed, dropped, failed."""

    frames_decoded: int = 0
    frames_sampled: int = 0
    frames_gated: int = 0
    frames_analysed: int = 0
    frames_dropped: int = 0
    frames_failed: int = 0
    frames_preroll: int = 0
    """Read again before the checkpoint after a restart (the model's history); not in `frames_sampled`."""
    frames_waited: int = 0
    """Catch-up frames that waited for room in the queue instead of being dropped (`live_edge_s`)."""
    decode_errors: int = 0
    alerts_published: int = 0
    alerts_failed: int = 0
    alerts_suppressed: int = 0
    alerts_not_notified: int = 0
    """Raised outside the arming schedule with `notify: false`: on the stream, not sent to SNS."""
    tamper_alerts: int = 0
    snapshots_failed: int = 0
    inference_calls: int = 0
    keyframes_only: bool = False
    lag_s_mean: float = 0.0
    lag_s_max: float = 0.0
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, int | float | bool]:
        return asdict(self)

    def all_accounted(self) -> bool:
        """Every sampled frame gated, analysed, dropped or failed: the worker has nothing left in hand."""
        done = self.frames_gated + self.frames_analysed + self.frames_dropped + self.frames_failed
        return done == self.frames_sampled


class Worker:
    def __init__(
        self,
        config: WorkerConfig,
        *,
        source: FrameSource,
        detector: Detector,
        publisher: AlertPublisher,
        snapshots: SnapshotWriter | None = None,
        stop_event: threading.Event | None = None,
        progress: FragmentProgress | None = None,
        clips: ClipArchiveRunner | None = None,
        status: CameraStatusReporter | None = None,
        scene: SceneProvider | None = None,
    ) -> None:
        self.config = config
        self.scene_provider: SceneProvider = scene or (lambda: config.scene)
        self._scene = config.scene  # the last scene the provider returned
        self._scene_failed = False
        self.masker = PrivacyMasker(config.camera_id)
        self.tamper = TamperMonitor(config.camera_id, config.site)
        self._tamper_alerts: queue.SimpleQueue[tuple[AlertRecord, Frame]] = queue.SimpleQueue()
        self.status = status  # the camera's status item for the console (worker.camera_status)
        self.last_analysed: LastAnalysed | None = None
        self.clips = clips  # alert clips (and scheduled normal footage) to the archive bucket
        # analysed frames' scores around each alert, written next to its clip for the console's chart
        self.scores = (
            ScoreHistory(config.archive.pre_roll_s, config.archive.post_roll_s) if clips is not None else None
        )
        self.progress = progress  # KVS: checkpoints advance as fragments are analysed and acked
        self.last_lag_s: float | None = None
        self.camera_id = config.camera_id
        self.source = source
        self.detector = detector
        self.publisher = publisher
        self.snapshots = snapshots
        self.stop_event = stop_event or threading.Event()
        self.gate = MotionGate(config.motion)
        self.policy = AlertPolicy(config.camera_id, config.site, config.policy)
        self.stats = WorkerStats()
        self.queue: queue.Queue[Frame] = queue.Queue(maxsize=config.queue_size)
        self._reader_done = threading.Event()
        self._held: Frame | None = None  # a frame that did not fit the last batch (other resolution)
        self._lag_total_s = 0.0
        self._missing_threshold_logged = False
        self._started = 0.0
        self._threads: list[threading.Thread] = []
        self.failed = False  # the reader died of an unexpected error

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._started = time.monotonic()
        self._threads = [
            threading.Thread(target=self._read, name=f"reader-{self.camera_id}", daemon=True),
            threading.Thread(target=self._analyse, name=f"analyser-{self.camera_id}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        if self.clips is not None:
            self.clips.start()
        if self.status is not None:
            self.status.start()
        logger.info("worker started camera=%s source=%s", self.camera_id, self.config.source)

    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def stop(self) -> WorkerStats:
        """Stop reading, finish the batch in hand, flush the publisher; the run's stats."""
        self.stop_event.set()
        for thread in self._threads:  # reader first, then analyser
            thread.join()
        self.publisher.close()
        if self.clips is not None:  # the clips of the last alerts, now that their footage is in
            self._submit_traces(self.scores.flush() if self.scores is not None else [])
            self.clips.stop(flush=True)
        if self.progress is not None:  # alerts acknowledged meanwhile complete their fragments
            self.progress.advance()
        self.source.close()
        if self.status is not None:
            self.status.stop()
        self._finish_stats()
        logger.info("worker stopped camera=%s stats=%s", self.camera_id, self.stats.to_dict())
        return self.stats

    def run(self) -> WorkerStats:
        """Until the source ends or the stop event is set (SIGTERM); then `stop()`."""
        self.start()
        while self.running() and not self.stop_event.is_set():
            for thread in self._threads:
                thread.join(QUEUE_POLL_S)  # short joins: signal handlers run in between
        return self.stop()

    def _finish_stats(self) -> None:
        stats = self.stats
        stats.frames_decoded = self.source.stats.frames_decoded
        stats.decode_errors = self.source.stats.decode_errors
        stats.keyframes_only = self.source.stats.keyframes_only
        stats.alerts_published = self.publisher.published
        stats.alerts_failed = self.publisher.failed
        stats.alerts_suppressed = self.policy.stats.suppressed
        stats.alerts_not_notified = self.policy.stats.not_notified
        stats.tamper_alerts = self.tamper.alerts
        stats.snapshots_failed = self.snapshots.failed if self.snapshots else 0
        stats.lag_s_mean = (
            round(self._lag_total_s / stats.frames_analysed, 4) if stats.frames_analysed else 0.0
        )
        stats.lag_s_max = round(stats.lag_s_max, 4)
        stats.elapsed_s = round(time.monotonic() - self._started, 3)

    # -- reader ----------------------------------------------------------------------------------

    def current_scene(self) -> CameraScene:
        """The provider's scene; the last good one when it fails (logged once per outage)."""
        try:
            scene = self.scene_provider()
        except Exception:
            if not self._scene_failed:
                logger.exception("scene provider failed camera=%s: keeping the last scene", self.camera_id)
            self._scene_failed = True
            return self._scene
        if self._scene_failed:
            logger.info("scene provider back camera=%s", self.camera_id)
        self._scene_failed = False
        self._scene = scene
        return scene

    def _scened(self, frame: Frame) -> Frame:
        """`frame` with the current scene and its privacy masks applied to its picture."""
        scene = self.current_scene()
        picture = self.masker.masked(frame.picture, scene)
        return dataclasses.replace(frame, picture=picture, scene=scene)

    def _check_tamper(self, frame: Frame) -> None:
        scene = frame.scene or self._scene
        alert = self.tamper.check(
            frame.picture,
            lambda size: self.masker.keep(scene, size),
            pts_s=frame.pts_s,
            captured_at=frame.captured_at,
            scene=scene,
        )
        if alert is not None:  # published by the analyser; its fragment waits for it like a queued frame
            if self.progress is not None:
                self.progress.frame_queued(frame.fragment_number)
            self._tamper_alerts.put((alert, frame))

    def _read(self) -> None:
        try:
            for frame in self.source.frames():
                if self.progress is not None:
                    self.progress.frame_sampled(frame.fragment_number)
                frame = self._scened(frame)
                if frame.preroll:  # read again after a restart: history for the gate and the model only
                    self.stats.frames_preroll += 1
                    self.gate.check(frame.picture, frame.pts_s)
                    self.detector.observe(frame.picture, scored=False)
                    continue
                self.stats.frames_sampled += 1
                self._check_tamper(frame)
                send = self.gate.check(frame.picture, frame.pts_s).send
                self.detector.observe(frame.picture, scored=send)  # a temporal model's history: every sampled frame
                if not send:
                    self.stats.frames_gated += 1
                    continue
                if self.progress is not None:
                    self.progress.frame_queued(frame.fragment_number)
                queued = self._enqueue(frame)
                if queued is None:  # stopped while waiting: not done, its fragment is read again
                    self._count_dropped(1, "stopped before analysis")
                elif not queued:
                    self._count_dropped(1, "queue full at the live edge")
                    if self.progress is not None:
                        self.progress.frame_done(frame.fragment_number)
                if self.stop_event.is_set():
                    break
        except Exception:
            self.failed = True
            logger.exception("reader failed camera=%s source=%s", self.camera_id, self.config.source)
        finally:
            self._reader_done.set()
            logger.info("reader done camera=%s", self.camera_id)

    def _enqueue(self, frame: Frame) -> bool | None:
        """Queue the frame for the analyser; False when it was dropped, None when the worker stopped
        while it waited. A full queue drops a frame at
        the live edge (captured within `live_edge_s`): under overload, alerts stay current. An older
        frame (a catch-up) waits for room instead, so no frame of a backlog goes unanalysed and the
        checkpoint never passes one (the lag metric shows the catch-up)."""
        try:
            self.queue.put_nowait(frame)
            return True
        except queue.Full:
            pass
        lag_s = (datetime.now(UTC) - frame.captured_at).total_seconds()
        if lag_s <= self.config.live_edge_s:
            return False
        self.stats.frames_waited += 1
        while not self.stop_event.is_set():
            try:
                self.queue.put(frame, timeout=QUEUE_POLL_S)
                return True
            except queue.Full:
                continue
        return None

    def _count_dropped(self, n: int, why: str) -> None:
        before = self.stats.frames_dropped
        self.stats.frames_dropped += n
        if before // DROP_LOG_EVERY != self.stats.frames_dropped // DROP_LOG_EVERY or before == 0:
            logger.warning(
                "frames dropped camera=%s (%s): %d so far", self.camera_id, why, self.stats.frames_dropped
            )

    # -- analyser --------------------------------------------------------------------------------

    def _emit_tamper(self) -> None:
        """Publish the tamper alerts the reader raised, and `no_signal` when the source is silent."""
        while True:
            try:
                alert, frame = self._tamper_alerts.get_nowait()
            except queue.Empty:
                break
            self._emit(alert, frame)
            if self.progress is not None:
                self.progress.frame_done(frame.fragment_number)
        reader_state = getattr(getattr(self.source, "reader", None), "state", None)
        if reader_state is not None:
            silent = str(reader_state) == "silent"
            # a silent camera samples no frame, so the reader asks for no scene: ask here, or a scene
            # that turned tamper on after the last frame would never see the silence
            alert = self.tamper.check_signal(silent, self.current_scene() if silent else self._scene)
            if alert is not None:
                self._emit(alert, None)

    def _analyse(self) -> None:
        while not self.stop_event.is_set():
            self._emit_tamper()
            batch = self._next_batch()
            if batch:
                states: list[dict | None] = [None] * len(batch)
                try:
                    states = self._analyse_batch(batch)
                except Exception:  # a bug must not stop the camera: count the frames, go on
                    self.stats.frames_failed += len(batch)
                    logger.exception("analysis failed camera=%s for %d frame(s)", self.camera_id, len(batch))
                for frame, state in zip(batch, states, strict=True) if self.progress is not None else ():
                    self.progress.frame_done(frame.fragment_number, policy=state)
            elif self._reader_done.is_set() and self.queue.empty() and self._held is None:
                break
        self._reader_done.wait()
        self._emit_tamper()  # what the reader raised last: alerts are never dropped  # stopped: the reader puts nothing more once it is done
        left = self.queue.qsize() + (self._held is not None)
        if left:
            self._count_dropped(left, "stopped before analysis")

    def _next_batch(self) -> list[Frame]:
        """Up to `batch_size` frames of one resolution, waiting at most `batch_max_wait_s` to fill."""
        if self._held is not None:
            batch, self._held = [self._held], None
        else:
            try:
                batch = [self.queue.get(timeout=QUEUE_POLL_S)]
            except queue.Empty:
                return []
        deadline = time.monotonic() + self.config.batch_max_wait_s
        while len(batch) < self.config.batch_size:
            try:
                frame = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if frame.picture.shape != batch[0].picture.shape:
                self._held = frame
                break
            batch.append(frame)
        return batch

    def _analyse_batch(self, batch: list[Frame]) -> list[dict | None]:
        """Score the batch and feed the policy; the policy's state after each frame (None where the
        frame could not be scored), which the checkpoint of the frame's fragment keeps."""
        states: list[dict | None] = [None] * len(batch)
        self.stats.inference_calls += 1
        try:
            response = self.detector.detect([frame.picture for frame in batch])
        except DetectorError as exc:
            self.stats.frames_failed += len(batch)
            logger.warning(
                "inference failed camera=%s frames=%d media_time_s=%.3f: %s",
                self.camera_id,
                len(batch),
                batch[0].pts_s,
                exc,
            )
            return states
        threshold = self.config.policy.threshold
        if threshold is None:
            threshold = response.threshold
        if threshold is None:
            self.stats.frames_failed += len(batch)
            if not self._missing_threshold_logged:
                self._missing_threshold_logged = True
                logger.error(
                    "no threshold camera=%s: the endpoint returned none and policy.threshold is not set",
                    self.camera_id,
                )
            return states
        now = datetime.now(UTC)
        for i, (frame, result) in enumerate(zip(batch, response.results, strict=True)):
            self.stats.frames_analysed += 1
            lag_s = (now - frame.captured_at).total_seconds()
            self.last_lag_s = lag_s  # the FrameLagSeconds metric (worker.metrics)
            self._lag_total_s += lag_s
            self.stats.lag_s_max = max(self.stats.lag_s_max, lag_s)
            for alert in self.policy.observe(
                pts_s=frame.pts_s,
                captured_at=frame.captured_at,
                score=result.score,
                threshold=threshold,
                regions=result.regions,
                model_version=response.model_version,
                scene=frame.scene,
            ):
                self._emit(alert, frame)
            if self.progress is not None:  # only checkpoints keep it: no dict per frame for files and RTSP
                states[i] = self.policy.snapshot()
            if self.scores is not None:
                self._submit_traces(self.scores.add(frame.pts_s, result.score))
        self.last_analysed = LastAnalysed(batch[-1].captured_at, lag_s, response.model_version, threshold)
        return states

    def _emit(self, alert: AlertRecord, frame: Frame | None) -> None:
        """Snapshot, clip and publish one alert; `frame` is None for one with no frame (no signal)."""
        if frame is None:
            spooled = self.publisher.publish(alert)
            logger.info(
                "alert camera=%s alert_id=%s event_type=%s tamper=%s spooled=%s",
                alert.camera_id, alert.alert_id, alert.event_type, alert.tamper, spooled,
            )  # fmt: skip
            return
        if self.clips is not None:  # the clip's key is known now; the object appears after post-roll
            schedule = self.config.archive
            alert = alert.model_copy(update={"clip": alert_clip_ref(
                self.clips.archiver.bucket, alert.camera_id, alert.started_at, schedule.pre_roll_s, schedule.post_roll_s)})
        if self.snapshots is not None:
            snapshot = self.snapshots.write(alert, frame.image)  # full-resolution RGB, converted now
            if snapshot is not None:
                alert = alert.model_copy(update={"snapshot": snapshot})
        if self.progress is not None:  # before publishing: the fragment waits for Kinesis' ack
            self.progress.alert_raised(frame.fragment_number, alert.alert_id)
        spooled = self.publisher.publish(alert)  # never waits on Kinesis: a sender thread puts it
        if self.clips is not None:
            self.clips.submit_alert(alert)
        if self.scores is not None and alert.tamper is None:  # a tamper alert has no anomaly score to chart
            self.scores.watch(alert)
        logger.info(
            "alert camera=%s alert_id=%s score=%.4f media_time_s=%.3f severity=%s frame=%d spooled=%s "
            "event_type=%s zone=%s tamper=%s armed=%s notify=%s",
            alert.camera_id,
            alert.alert_id,
            alert.score,
            alert.media_time_s,
            alert.severity,
            frame.index,
            spooled,
            alert.event_type,
            alert.zone,
            alert.tamper,
            alert.armed,
            alert.notify,
        )

    def _submit_traces(self, traces: list[tuple[str, ScoreTrace]]) -> None:
        for key, trace in traces:
            self.clips.submit_trace(key, trace)  # type: ignore[union-attr]


def build_worker(
    config: WorkerConfig,
    stop_event: threading.Event | None = None,
    *,
    detector: Detector | None = None,
    worker_id: str | None = None,
    scene: SceneProvider | None = None,
) -> Worker:
    """The production wiring: PyAV source, SageMaker endpoint, S3 snapshots, Kinesis publisher,
    the camera's status item in the state table (`camera_status.enabled`).
    The source is opened here, so a missing or unreadable source fails before any thread starts.
    `detector`: instead of a `SageMakerDetector` of the camera's own (fleet mode: one that shares
    the calls of every camera, `worker.batching`). `worker_id`: who owns the camera, in its status
    (fleet mode: the lease holder; default host-pid). `scene`: where the camera's scene comes from,
    called once per sampled frame (default: `config.scene`; in production `worker.live_scene.LiveScene`,
    whose revision and refusal the status item reports too)."""
    stop_event = stop_event or threading.Event()
    kvs = build_kvs_source(config, stop_event) if is_kvs(config.source) else None
    source = kvs.source if kvs is not None else AvSource(
        config.source,
        sample_fps=config.sample_fps,
        camera_id=config.camera_id,
        speed=config.speed,
        start_s=config.start_s,
        end_s=config.end_s,
        stop_event=stop_event,
    )
    source.open()
    detector = detector or SageMakerDetector(
        config.endpoint_name,
        camera_id=config.camera_id,
        max_side=config.inference_max_side,
        max_attempts=config.max_attempts,
        retry_base_s=config.retry_base_s,
    )
    spool_dir = config.publisher.spool_dir
    publisher = AlertPublisher(
        config.alert_stream,
        spool=AlertSpool(
            spool_dir / config.camera_id if spool_dir is not None else None,
            max_alerts=config.publisher.max_spooled,
            camera_id=config.camera_id,
        ),
        retry_base_s=config.retry_base_s,
        retry_max_s=config.publisher.retry_max_s,
        camera_id=config.camera_id,
    )
    snapshots = SnapshotWriter(config.archive_bucket) if config.archive_bucket else None
    if snapshots is None:
        logger.warning("no archive bucket camera=%s: alerts go out without snapshots", config.camera_id)
    if kvs is not None:
        kvs.progress.pending_alerts = lambda: {a.alert_id for a in publisher.spool.oldest(len(publisher.spool))}
    worker = Worker(
        config,
        source=source,
        detector=detector,
        publisher=publisher,
        snapshots=snapshots,
        stop_event=stop_event,
        progress=kvs.progress if kvs is not None else None,
        clips=build_clip_runner(config),
        scene=scene,
    )
    if kvs is not None and kvs.checkpoint is not None and kvs.checkpoint.policy is not None:
        worker.policy.restore(kvs.checkpoint.policy)  # an event open at the checkpoint keeps its alert_id
    if config.camera_status.enabled:
        worker.status = status_reporter(worker, worker_id, scene=scene)
    return worker


def build_clip_runner(config: WorkerConfig) -> ClipArchiveRunner | None:
    """Alert clips (and, from KVS, normal footage on the schedule) to the archive bucket, if any.

    A file or URL played by this worker has no stable wall clock for scheduled slots: only alert
    clips are cut from it, at the event's media time."""
    if not config.archive_bucket:
        return None
    stream = kvs_stream_name(config.source)
    schedule = config.archive if stream else config.archive.model_copy(update={"normal": False})

    def source_for(request: ClipRequest) -> KvsClipSource | LocalClipSource:
        if stream:
            return KvsClipSource(stream)
        if request.media_epoch is None:
            raise ArchiveError(f"clip {request.key} has no media epoch for local source {config.source}")
        return LocalClipSource(config.source, request.media_epoch)

    scheduler = ArchiveScheduler(schedule)
    if schedule.normal:
        scheduler.add_camera(config.camera_id, datetime.now(UTC))
    return ClipArchiveRunner(Archiver(config.archive_bucket), scheduler, source_for)
