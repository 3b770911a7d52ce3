"""Alert publisher: alert records onto the Kinesis Data Stream with `PutRecords`.

Partition key = camera id (one camera's alerts stay in order on one shard); data = the alert JSON.
A partial failure (`FailedRecordCount > 0`) is retried for exactly the failed entries, a throttled
or failed call as a whole, with jittered exponential backoff. Alerts are never dropped silently:
one that still cannot be delivered is logged at ERROR with its full JSON, so it can be replayed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from contracts.alert import AlertRecord
from worker.retry import NO_BOTOCORE_RETRIES, backoff_delay, is_retryable

logger = logging.getLogger(__name__)

MAX_RECORDS_PER_CALL = 500  # the PutRecords limit


class AlertPublisher:
    def __init__(
        self,
        stream_name: str,
        *,
        client: Any = None,
        max_attempts: int = 5,
        retry_base_s: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.stream_name = stream_name
        self.client = client or boto3.client("kinesis", config=NO_BOTOCORE_RETRIES)
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.sleep = sleep
        self.published = 0
        self.failed = 0
        self.retries = 0
        self._pending: list[AlertRecord] = []
        self._lock = threading.Lock()

    def publish(self, alert: AlertRecord) -> bool:
        """Send `alert` now (with any still pending); True once it is on the stream."""
        with self._lock:
            self._pending.append(alert)
            delivered = self._flush_locked()
        return alert.alert_id in delivered

    def flush(self) -> int:
        """Send everything pending; how many alerts were delivered."""
        with self._lock:
            return len(self._flush_locked())

    def _flush_locked(self) -> set[str]:
        delivered: set[str] = set()
        while self._pending:
            chunk, self._pending = self._pending[:MAX_RECORDS_PER_CALL], self._pending[MAX_RECORDS_PER_CALL:]
            delivered |= self._put_with_retries(chunk)
        return delivered

    def _put_with_retries(self, alerts: list[AlertRecord]) -> set[str]:
        delivered: set[str] = set()
        pending = alerts
        cameras = ",".join(sorted({alert.camera_id for alert in alerts}))
        attempts = 0
        for attempt in range(self.max_attempts):
            attempts = attempt + 1
            if attempt:
                self.retries += 1
                self.sleep(backoff_delay(attempt - 1, self.retry_base_s))
            records = [
                {"Data": alert.model_dump_json().encode(), "PartitionKey": alert.camera_id}
                for alert in pending
            ]
            try:
                response = self.client.put_records(StreamName=self.stream_name, Records=records)
            except (ClientError, BotoCoreError) as exc:
                if not is_retryable(exc):
                    logger.error(
                        "put_records failed camera=%s stream=%s (not retryable): %s",
                        cameras,
                        self.stream_name,
                        exc,
                    )
                    break
                logger.warning(
                    "put_records failed camera=%s stream=%s attempt=%d/%d: %s",
                    cameras,
                    self.stream_name,
                    attempts,
                    self.max_attempts,
                    exc,
                )
                continue
            failed = []
            for alert, result in zip(pending, response["Records"], strict=True):
                if "ErrorCode" in result:
                    failed.append((alert, result["ErrorCode"]))
                else:
                    delivered.add(alert.alert_id)
                    self.published += 1
                    logger.debug(
                        "alert delivered camera=%s alert_id=%s shard=%s sequence=%s",
                        alert.camera_id,
                        alert.alert_id,
                        result.get("ShardId"),
                        result.get("SequenceNumber"),
                    )
            if not failed:
                return delivered
            logger.warning(
                "put_records partial failure camera=%s stream=%s attempt=%d/%d: %d of %d failed (%s)",
                cameras,
                self.stream_name,
                attempts,
                self.max_attempts,
                len(failed),
                len(pending),
                ", ".join(sorted({code for _, code in failed})),
            )
            pending = [alert for alert, _ in failed]
        for alert in pending:
            self.failed += 1
            logger.error(
                "alert NOT delivered camera=%s alert_id=%s stream=%s after %d attempt(s); alert=%s",
                alert.camera_id,
                alert.alert_id,
                self.stream_name,
                attempts,
                alert.model_dump_json(),
            )
        return delivered
