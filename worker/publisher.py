"""Alert publisher: alert records onto the Kinesis Data Stream with `PutRecords`, off the frame path.

`publish(alert)` only writes the alert to the spool (`worker.spool`: bounded, durable on disk when
it has a directory) and returns; a sender thread does the network work. So a slow or unreachable
Kinesis never blocks the reader or the analyser, and a restart finds the unsent alerts on disk.

The sender takes the oldest spooled alerts (at most 500 records / 5 MiB per call), partition key =
camera id, data = the alert JSON. A partial failure (`FailedRecordCount > 0`, e.g.
`ProvisionedThroughputExceededException` per entry) is retried for exactly the failed entries; a
call that fails as a whole (throttling, 5xx, connection refused, a stream that is missing or not
yet allowed) is retried whole. Each retry waits a jittered exponential backoff capped at
`retry_max_s`, and retries go on for as long as it takes: an alert leaves the spool only once
Kinesis has accepted it. Only a request Kinesis refuses as invalid (`ValidationException`,
`InvalidArgumentException`) is given up, alert by alert, kept in the spool's `rejected/` folder and
logged at ERROR with its JSON. Alerts are never dropped silently.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Self

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from contracts.alert import AlertRecord
from contracts.retry import NO_BOTOCORE_RETRIES, backoff_delay, is_retryable
from worker.spool import AlertSpool

logger = logging.getLogger(__name__)

MAX_RECORDS_PER_CALL = 500  # the PutRecords limits
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
REFUSED_CODES = frozenset({"ValidationException", "InvalidArgumentException"})
LOG_EVERY_ATTEMPTS = 10  # while Kinesis stays down, one WARNING per this many attempts
# Fail fast on a network that drops packets: the sender retries on its own schedule.
_CLIENT_CONFIG = NO_BOTOCORE_RETRIES.merge(Config(connect_timeout=3, read_timeout=10))


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


class AlertPublisher:
    """Spool alerts and send them from a background thread; `close()` flushes and stops it."""

    def __init__(
        self,
        stream_name: str,
        *,
        client: Any = None,
        spool: AlertSpool | None = None,
        retry_base_s: float = 0.1,
        retry_max_s: float = 5.0,
        camera_id: str = "-",
    ) -> None:
        self.stream_name = stream_name
        self.client = client or boto3.client("kinesis", config=_CLIENT_CONFIG)
        self.spool = spool if spool is not None else AlertSpool(camera_id=camera_id)
        self.retry_base_s = retry_base_s
        self.retry_max_s = max(retry_max_s, retry_base_s)
        self.camera_id = camera_id
        self.published = 0
        self.retries = 0
        self.calls = 0
        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._stop_now = threading.Event()
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name=f"publisher-{camera_id}", daemon=True)
        self._thread.start()
        if not self.spool.durable:
            logger.warning(
                "alert spool camera=%s is in memory only: alerts not yet on the stream are lost on a restart",
                camera_id,
            )

    # -- the frame side: never waits on the network --------------------------------------------------

    def publish(self, alert: AlertRecord) -> bool:
        """Spool `alert` for sending; True once it is spooled, False when the spool is full (ERROR)."""
        if self._closing.is_set():
            logger.error(
                "alert published after close camera=%s alert_id=%s; alert=%s",
                alert.camera_id,
                alert.alert_id,
                alert.model_dump_json(),
            )
            return False
        kept = self.spool.add(alert)
        with self._changed:
            self._changed.notify_all()
        return kept

    @property
    def failed(self) -> int:
        """Alerts that did not reach the stream and never will by themselves: overflowed or refused."""
        return self.spool.overflowed + self.spool.rejected

    @property
    def pending(self) -> int:
        return len(self.spool)

    def flush(self, timeout_s: float | None = 10.0) -> bool:
        """Wait until every spooled alert is on the stream (True), or `timeout_s` passes (False)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._changed:
            while len(self.spool) or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def close(self, timeout_s: float = 10.0) -> int:
        """Flush for at most `timeout_s`, stop the sender; how many alerts are left in the spool."""
        flushed = self.flush(timeout_s)
        self._closing.set()
        self._stop_now.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join(timeout=max(1.0, timeout_s))
        left = [] if flushed else self.spool.oldest(len(self.spool))
        if left and self.spool.durable:
            logger.warning(
                "publisher closed camera=%s with %d alert(s) not yet on the stream; kept in %s for the next start",
                self.camera_id,
                len(left),
                self.spool.directory,
            )
        for alert in left if not self.spool.durable else []:
            logger.error(
                "alert NOT delivered camera=%s alert_id=%s: publisher closed, memory spool; alert=%s",
                alert.camera_id,
                alert.alert_id,
                alert.model_dump_json(),
            )
        return len(left)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the sender thread -------------------------------------------------------------------------

    def _run(self) -> None:
        retry: list[AlertRecord] = []  # exactly the entries that failed in the last call
        attempt = 0
        while not self._stop_now.is_set():
            batch = retry or self._take()
            if not batch:
                with self._changed:
                    self._changed.notify_all()
                    if not len(self.spool) and not self._stop_now.is_set():
                        self._changed.wait(1.0)
                continue
            with self._changed:
                self._in_flight = len(batch)
            try:
                failed = self._send(batch, attempt)
            except Exception:  # a bug must not stop the sender: the alerts stay spooled
                logger.exception("publisher sender failed camera=%s; retrying", self.camera_id)
                failed = batch
            with self._changed:
                self._in_flight = 0
                self._changed.notify_all()
            if failed:
                if attempt and attempt % LOG_EVERY_ATTEMPTS == 0:
                    logger.warning(
                        "alerts still not on stream=%s camera=%s after %d attempts; %d spooled",
                        self.stream_name,
                        self.camera_id,
                        attempt + 1,
                        len(self.spool),
                    )
                retry = failed
                self.retries += 1
                self._stop_now.wait(backoff_delay(attempt, self.retry_base_s, self.retry_max_s))
                attempt += 1
            else:
                if attempt:
                    logger.info(
                        "stream=%s camera=%s accepting alerts again after %d failed attempt(s)",
                        self.stream_name,
                        self.camera_id,
                        attempt,
                    )
                retry, attempt = [], 0

    def _take(self) -> list[AlertRecord]:
        batch: list[AlertRecord] = []
        size = 0
        for alert in self.spool.oldest(MAX_RECORDS_PER_CALL):
            record_size = len(alert.model_dump_json().encode()) + len(alert.camera_id.encode())
            if batch and size + record_size > MAX_BYTES_PER_CALL:
                break
            batch.append(alert)
            size += record_size
        return batch

    def _send(self, alerts: list[AlertRecord], attempt: int) -> list[AlertRecord]:
        """One PutRecords call; the alerts to retry (none: all delivered or refused for good)."""
        records = [
            {"Data": alert.model_dump_json().encode(), "PartitionKey": alert.camera_id} for alert in alerts
        ]
        cameras = ",".join(sorted({alert.camera_id for alert in alerts}))
        self.calls += 1
        try:
            response = self.client.put_records(StreamName=self.stream_name, Records=records)
        except (ClientError, BotoCoreError) as exc:
            code = _error_code(exc)
            if code in REFUSED_CODES:
                return self._refused(alerts, exc)
            log = logger.warning if is_retryable(exc) else logger.error
            if attempt % LOG_EVERY_ATTEMPTS == 0:
                log(
                    "put_records failed camera=%s stream=%s attempt=%d (%s): %s; %d alert(s) stay spooled",
                    cameras,
                    self.stream_name,
                    attempt + 1,
                    code,
                    exc,
                    len(self.spool),
                )
            return alerts
        failed: list[tuple[AlertRecord, str]] = []
        delivered: set[str] = set()
        for alert, result in zip(alerts, response["Records"], strict=True):
            if "ErrorCode" in result:
                failed.append((alert, str(result["ErrorCode"])))
            else:
                delivered.add(alert.alert_id)
                logger.debug(
                    "alert delivered camera=%s alert_id=%s shard=%s sequence=%s",
                    alert.camera_id,
                    alert.alert_id,
                    result.get("ShardId"),
                    result.get("SequenceNumber"),
                )
        self.spool.remove(delivered)
        self.published += len(delivered)
        if failed:
            logger.warning(
                "put_records partial failure camera=%s stream=%s attempt=%d: %d of %d failed (%s); "
                "retrying exactly those",
                cameras,
                self.stream_name,
                attempt + 1,
                len(failed),
                len(alerts),
                ", ".join(sorted({code for _, code in failed})),
            )
        return [alert for alert, _ in failed]

    def _refused(self, alerts: list[AlertRecord], exc: BaseException) -> list[AlertRecord]:
        """Kinesis refused the request as invalid: find the alert(s) at fault by sending them one by one."""
        if len(alerts) > 1:
            retry: list[AlertRecord] = []
            for alert in alerts:
                retry += self._send([alert], 0)
            return retry
        self.spool.reject(alerts[0], f"Kinesis refused it on stream {self.stream_name}: {exc}")
        return []
