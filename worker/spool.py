"""The publisher's spool: alerts waiting for the Kinesis Data Stream, bounded, and durable on disk.

Every alert the policy raises is written here first, then sent by the publisher's sender thread and
removed once Kinesis has accepted it. With a directory, each alert is one JSON file written
atomically (temporary file, fsync, rename, fsync of the directory), so a crash or a restart loses
nothing: a new spool on the same directory finds the files and the publisher sends them again.
Without a directory the spool lives in memory (tests, or a deliberate choice) and a restart loses
what is in it.

    <spool_dir>/<20-digit sequence>-<alert_id>.json    waiting, oldest first
    <spool_dir>/rejected/<same name>                    refused by Kinesis for good (kept for replay)

The spool is bounded (`max_alerts`): an alert that does not fit is refused loudly (ERROR line with
the whole alert JSON, `overflowed` counter), never dropped in silence. A file that cannot be read
back (truncated by a full disk, edited by hand) is moved to `rejected/` with an ERROR line.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from contracts.alert import AlertRecord

logger = logging.getLogger(__name__)

REJECTED_DIR = "rejected"
_NAME = re.compile(r"^(\d{20})-([A-Za-z0-9-]{1,64})\.json$")


class SpoolError(OSError):
    """The spool directory cannot be created."""


@dataclass(frozen=True)
class SpooledAlert:
    """An alert in the spool, with its place in the order."""

    sequence: int
    alert: AlertRecord


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AlertSpool:
    """Alerts in arrival order, at most `max_alerts`, one per `alert_id`; thread-safe."""

    def __init__(
        self, directory: Path | None = None, *, max_alerts: int = 10_000, camera_id: str = "-"
    ) -> None:
        if max_alerts < 1:
            raise ValueError(f"max_alerts must be at least 1, got {max_alerts}")
        self.directory = directory
        self.max_alerts = max_alerts
        self.camera_id = camera_id
        self.overflowed = 0
        self.rejected = 0
        self.write_errors = 0
        self.recovered = 0
        self._lock = threading.Lock()
        self._alerts: OrderedDict[str, SpooledAlert] = OrderedDict()  # alert_id -> spooled alert
        self._next = itertools.count(1)
        if directory is not None:
            self._open(directory)

    # -- opening -------------------------------------------------------------------------------------

    def _open(self, directory: Path) -> None:
        try:
            (directory / REJECTED_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create spool directory {directory}: {exc.strerror or exc}") from None
        for leftover in directory.glob("*.tmp"):  # a write interrupted before its rename
            leftover.unlink(missing_ok=True)
        found: list[SpooledAlert] = []
        for path in sorted(directory.glob("*.json")):
            match = _NAME.match(path.name)
            alert = self._read(path) if match else None
            if match is None or alert is None:
                self._move_to_rejected(path, "unreadable spool file")
                continue
            found.append(SpooledAlert(sequence=int(match.group(1)), alert=alert))
        for item in found:
            self._alerts.setdefault(item.alert.alert_id, item)
        last = max((item.sequence for item in found), default=0)
        self._next = itertools.count(last + 1)
        self.recovered = len(self._alerts)
        if self.recovered:
            logger.warning(
                "spool camera=%s dir=%s: %d alert(s) left by an earlier run, sending them again",
                self.camera_id,
                directory,
                self.recovered,
            )

    def _read(self, path: Path) -> AlertRecord | None:
        try:
            return AlertRecord.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            logger.error(
                "spool camera=%s: cannot read %s: %s", self.camera_id, path, str(exc).splitlines()[0]
            )
            return None

    # -- the queue -----------------------------------------------------------------------------------

    @property
    def durable(self) -> bool:
        return self.directory is not None

    def __len__(self) -> int:
        with self._lock:
            return len(self._alerts)

    def add(self, alert: AlertRecord) -> bool:
        """Keep `alert` until `remove`; False (logged at ERROR, counted) when the spool is full.

        An alert already in the spool (same `alert_id`) is not added twice. When its file cannot be
        written (disk full, read-only volume) the alert is kept in memory only, with an ERROR line."""
        with self._lock:
            if alert.alert_id in self._alerts:
                return True
            if len(self._alerts) >= self.max_alerts:
                self.overflowed += 1
                logger.error(
                    "spool FULL camera=%s: %d alert(s) waiting, limit %d; alert NOT kept "
                    "(overflowed=%d) alert_id=%s alert=%s",
                    alert.camera_id,
                    len(self._alerts),
                    self.max_alerts,
                    self.overflowed,
                    alert.alert_id,
                    alert.model_dump_json(),
                )
                return False
            item = SpooledAlert(sequence=next(self._next), alert=alert)
            if self.directory is not None:
                try:
                    self._write(item)
                except OSError as exc:
                    self.write_errors += 1
                    logger.error(
                        "spool camera=%s: cannot write %s (%s); alert_id=%s kept in memory only, a restart "
                        "would lose it; alert=%s",
                        alert.camera_id,
                        self._path(item),
                        exc.strerror or exc,
                        alert.alert_id,
                        alert.model_dump_json(),
                    )
            self._alerts[alert.alert_id] = item
            return True

    def oldest(self, limit: int) -> list[AlertRecord]:
        """Up to `limit` alerts, oldest first (they stay in the spool)."""
        with self._lock:
            return [item.alert for item in itertools.islice(self._alerts.values(), limit)]

    def remove(self, alert_ids: set[str]) -> None:
        """Forget these alerts: they are on the stream."""
        with self._lock:
            for alert_id in alert_ids:
                item = self._alerts.pop(alert_id, None)
                if item is not None and self.directory is not None:
                    self._path(item).unlink(missing_ok=True)

    def reject(self, alert: AlertRecord, reason: str) -> None:
        """Take `alert` out of the queue for good (Kinesis refused it), keeping its file in `rejected/`."""
        with self._lock:
            item = self._alerts.pop(alert.alert_id, None)
            self.rejected += 1
            logger.error(
                "alert NOT delivered camera=%s alert_id=%s: %s; kept in %s; alert=%s",
                alert.camera_id,
                alert.alert_id,
                reason,
                self.directory / REJECTED_DIR if self.directory is not None else "no spool directory",
                alert.model_dump_json(),
            )
            if item is not None and self.directory is not None:
                self._move_to_rejected(self._path(item), reason)

    # -- files ---------------------------------------------------------------------------------------

    def _path(self, item: SpooledAlert) -> Path:
        assert self.directory is not None
        return self.directory / f"{item.sequence:020d}-{item.alert.alert_id}.json"

    def _write(self, item: SpooledAlert) -> None:
        path = self._path(item)
        temporary = path.with_suffix(".tmp")
        try:
            with open(temporary, "wb") as handle:
                handle.write(item.alert.model_dump_json().encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            _fsync_dir(path.parent)
        except OSError:
            temporary.unlink(missing_ok=True)
            raise

    def _move_to_rejected(self, path: Path, reason: str) -> None:
        assert self.directory is not None
        target = self.directory / REJECTED_DIR / path.name
        try:
            os.replace(path, target)
        except OSError as exc:
            logger.error("spool camera=%s: cannot move %s aside: %s", self.camera_id, path, exc)
            return
        if reason == "unreadable spool file":
            self.rejected += 1
            logger.error("spool camera=%s: %s moved to %s (%s)", self.camera_id, path.name, target, reason)
