"""The worker's hook: a thread that archives clips as they fall due.

    runner = ClipArchiveRunner(Archiver(bucket), ArchiveScheduler(), source_for)
    runner.start()
    runner.submit_alert(alert)     # after the alert is published
    runner.submit_trace(key, trace)  # its score trace, once its post-roll is analysed (scores.py)
    runner.stop()                  # archives the alert clips still pending, then returns

`source_for(request)` gives the footage: `LocalClipSource(source, request.media_epoch)` for a file
or URL, `KvsClipSource(stream)` on AWS. A failed clip is logged and retried on the next poll, a
bounded number of times; the worker never waits for the archive. A score trace is written on the
next poll, next to where its clip goes (`<clip key without .mp4>.scores.json`), once: a failure is
logged and the trace given up (it only draws the alert page's chart; the clip and alert go on).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from archive.clip_source import ClipSource
from archive.errors import ArchiveError
from archive.schedule import ArchiveScheduler, ClipRequest
from contracts.alert import AlertRecord
from contracts.manifest import ManifestLine
from contracts.score_trace import ScoreTrace

logger = logging.getLogger(__name__)


class ClipArchiveRunner:
    def __init__(
        self,
        archiver,  # archive.archiver.Archiver (not imported: it imports this package)
        scheduler: ArchiveScheduler,
        source_for: Callable[[ClipRequest], ClipSource],
        *,
        poll_s: float = 1.0,
        max_attempts: int = 3,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.archiver = archiver
        self.scheduler = scheduler
        self.source_for = source_for
        self.poll_s = poll_s
        self.max_attempts = max_attempts
        self.clock = clock
        self.archived = 0
        self.failed = 0
        self._retry: list[tuple[ClipRequest, int]] = []
        self._traces: list[tuple[str, ScoreTrace]] = []
        self._traces_lock = threading.Lock()
        self.traces_written = 0
        self.traces_failed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def submit_alert(self, alert: AlertRecord) -> ClipRequest:
        """Queue the alert's clip; it is archived once its post-roll (and settle time) has passed."""
        return self.scheduler.add_alert(alert)

    def submit_trace(self, key: str, trace: ScoreTrace) -> None:
        """Queue an alert's score trace for `key` (next to its clip); written on the next poll."""
        with self._traces_lock:
            self._traces.append((key, trace))

    def write_traces(self) -> int:
        """Write the queued score traces; a failure is logged with the camera and not retried."""
        with self._traces_lock:
            traces, self._traces = self._traces, []
        for key, trace in traces:
            try:
                self.archiver.store.put_json(key, trace.model_dump_json())
                self.traces_written += 1
                logger.info("score trace camera=%s alert_id=%s %s: %d points",
                            trace.camera_id, trace.alert_id, key, len(trace.points))
            except Exception as exc:  # noqa: BLE001 - a chart's data must never stop clips or alerts
                self.traces_failed += 1
                logger.error("score trace camera=%s alert_id=%s %s not written: %s",
                             trace.camera_id, trace.alert_id, key, exc)
        return len(traces)

    def run_once(self, now: datetime | None = None, *, flush_alerts: bool = False) -> list[ManifestLine]:
        """Write the queued score traces, then archive every request due at `now` (and earlier
        failures; with `flush_alerts`, every pending alert clip too); returns the lines written."""
        self.write_traces()
        retry, self._retry = self._retry, []
        due = self.scheduler.due(now or self.clock())
        if flush_alerts:
            due += self.scheduler.take_pending_alerts()
        work = retry + [(request, 0) for request in due]
        lines: list[ManifestLine] = []
        for request, failures in work:
            try:
                lines += self.archiver.archive_request(self.source_for(request), request)
                self.archived += 1
            except Exception as exc:  # noqa: BLE001 - one clip's failure must not stop the others
                if isinstance(exc, ArchiveError) and failures + 1 < self.max_attempts:
                    self._retry.append((request, failures + 1))
                    logger.warning("clip camera=%s %s failed (%s); will retry", request.camera_id, request.key, exc)
                else:
                    self.failed += 1
                    logger.error("clip camera=%s %s given up: %s", request.camera_id, request.key, exc)
        return lines

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.run_once()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="clip-archiver", daemon=True)
        self._thread.start()

    def stop(self, flush: bool = True) -> None:
        """Stop polling; with `flush`, archive every pending alert clip now (a file source is complete)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if flush:
            self.run_once(flush_alerts=True)
