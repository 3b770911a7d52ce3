"""The worker's hook: a thread that archives clips as they fall due.

    runner = ClipArchiveRunner(Archiver(bucket), ArchiveScheduler(), source_for)
    runner.start()
    runner.submit_alert(alert)     # after the alert is published
    runner.stop()                  # archives the alert clips still pending, then returns

`source_for(request)` gives the footage: `LocalClipSource(source, request.media_epoch)` for a file
or URL, `KvsClipSource(stream)` on AWS. A failed clip is logged and retried on the next poll, a
bounded number of times; the worker never waits for the archive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from contracts.alert import AlertRecord
from contracts.manifest import ManifestLine
from worker.archive.clip_source import ClipSource
from worker.archive.errors import ArchiveError
from worker.archive.schedule import ArchiveScheduler, ClipRequest

logger = logging.getLogger(__name__)


class ClipArchiveRunner:
    def __init__(
        self,
        archiver,  # worker.archiver.Archiver (not imported: it imports this package)
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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def submit_alert(self, alert: AlertRecord) -> ClipRequest:
        """Queue the alert's clip; it is archived once its post-roll (and settle time) has passed."""
        return self.scheduler.add_alert(alert)

    def run_once(self, now: datetime | None = None, *, flush_alerts: bool = False) -> list[ManifestLine]:
        """Archive every request due at `now` (and earlier failures; with `flush_alerts`, every
        pending alert clip too); returns the lines written."""
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
