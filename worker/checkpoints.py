"""Checkpoints: per camera, the last KVS fragment whose frames are fully analysed and whose alerts
Kinesis acknowledged; a restarted worker resumes just after it (no fragment skipped, and the
deterministic `alert_id`s make any alert raised again the same record, not a second notification).

- `CheckpointStore`: one DynamoDB item per camera in the state table (`id` = `checkpoint#<camera>`),
  written only forward (a conditional write on the fragment order key), so a slow worker that lost
  its lease cannot move a checkpoint back.
- `FragmentProgress`: the bookkeeping between the threads. The source says when a fragment's last
  frame was handed over (`fragment_read`); the pipeline says when each queued frame is analysed
  (`frame_queued` / `frame_done`) and which alerts it raised (`alert_raised`). A fragment is done
  when it is read, none of its frames wait in the queue or the analyser, and none of its alerts
  is still waiting for Kinesis; the checkpoint moves to the newest fragment that is done with
  every fragment before it done too. Frames dropped (queue full) or gated out count as handled;
  frames left in the queue at a stop do not, so their fragment is read again after a restart."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from worker.env import ENV_STATE_TABLE

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint#"
ORDER_KEY_DIGITS = 64
"""Fragment numbers are decimal strings of up to ~50 digits (too long for a DynamoDB number):
zero-padded to this width they compare as strings in the order of the fragments."""


def order_key(fragment_number: str) -> str:
    if not fragment_number.isdigit():
        raise ValueError(f"fragment number must be decimal digits, got {fragment_number!r}")
    return fragment_number.rjust(ORDER_KEY_DIGITS, "0")


@dataclass(frozen=True)
class Checkpoint:
    camera_id: str
    fragment_number: str
    continuation_token: str | None = None
    producer_timestamp: float | None = None
    updated_at: str = ""
    worker_id: str = ""


class CheckpointStore:
    def __init__(self, table_name: str | None = None, *, client: Any = None, worker_id: str = "-") -> None:
        self.table_name = table_name or os.environ.get(ENV_STATE_TABLE) or "vigil-state"
        self.client = client or boto3.client("dynamodb")
        self.worker_id = worker_id
        self.writes = 0
        self.stale = 0

    def load(self, camera_id: str) -> Checkpoint | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"id": {"S": CHECKPOINT_PREFIX + camera_id}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        producer = item.get("producer_timestamp", {}).get("N")
        return Checkpoint(
            camera_id=camera_id,
            fragment_number=item["fragment_number"]["S"],
            continuation_token=item.get("continuation_token", {}).get("S"),
            producer_timestamp=float(producer) if producer is not None else None,
            updated_at=item.get("updated_at", {}).get("S", ""),
            worker_id=item.get("worker_id", {}).get("S", ""),
        )

    def save(self, checkpoint: Checkpoint) -> bool:
        """Write `checkpoint` if it is newer than the stored one; False when it is not (kept)."""
        item: dict[str, Any] = {
            "id": {"S": CHECKPOINT_PREFIX + checkpoint.camera_id},
            "camera_id": {"S": checkpoint.camera_id},
            "fragment_number": {"S": checkpoint.fragment_number},
            "order_key": {"S": order_key(checkpoint.fragment_number)},
            "updated_at": {"S": datetime.now(UTC).isoformat(timespec="milliseconds")},
            "worker_id": {"S": self.worker_id},
        }
        if checkpoint.continuation_token:
            item["continuation_token"] = {"S": checkpoint.continuation_token}
        if checkpoint.producer_timestamp is not None:
            item["producer_timestamp"] = {"N": repr(checkpoint.producer_timestamp)}
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(id) OR order_key < :new",
                ExpressionAttributeValues={":new": item["order_key"]},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            self.stale += 1
            logger.info(
                "checkpoint not moved back camera=%s fragment=%s",
                checkpoint.camera_id,
                checkpoint.fragment_number,
            )
            return False
        self.writes += 1
        logger.info(
            "checkpoint camera=%s fragment=%s producer_timestamp=%s",
            checkpoint.camera_id,
            checkpoint.fragment_number,
            checkpoint.producer_timestamp,
        )
        return True


@dataclass
class _Fragment:
    number: str
    continuation_token: str | None = None
    producer_timestamp: float | None = None
    read: bool = False
    pending_frames: int = 0
    alerts: set[str] = field(default_factory=set)


class FragmentProgress:
    """Which fragments are done; advances the checkpoint (thread-safe)."""

    def __init__(
        self,
        camera_id: str,
        *,
        store: CheckpointStore | None = None,
        pending_alerts: Callable[[], set[str]] | None = None,
    ) -> None:
        """`pending_alerts`: the ids of the alerts not yet acknowledged by Kinesis (the publisher's
        spool); without it, an alert counts as acknowledged once raised."""
        self.camera_id = camera_id
        self.store = store
        self.pending_alerts = pending_alerts or set
        self.checkpoint: Checkpoint | None = None
        self.save_errors = 0
        self._fragments: OrderedDict[str, _Fragment] = OrderedDict()
        self._event_open = False
        self._lock = threading.Lock()

    def _entry(self, number: str) -> _Fragment:
        entry = self._fragments.get(number)
        if entry is None:
            entry = self._fragments[number] = _Fragment(number)
        return entry

    def frame_queued(self, number: str | None) -> None:
        if number is None:
            return
        with self._lock:
            self._entry(number).pending_frames += 1

    def frame_done(self, number: str | None, *, event_open: bool | None = None) -> None:
        """A queued frame is analysed (or dropped). `event_open`: whether the alert policy has an
        event open after it; while one is, the checkpoint stays before the event, so a restart sees
        the event from its start again and raises the same alert (same `alert_id`), not a new one."""
        if number is None:
            return
        with self._lock:
            entry = self._fragments.get(number)
            if entry is not None:
                entry.pending_frames -= 1
            if event_open is not None:
                self._event_open = event_open
        self.advance()

    def alert_raised(self, number: str | None, alert_id: str) -> None:
        if number is None:
            return
        with self._lock:
            self._entry(number).alerts.add(alert_id)

    def fragment_read(
        self, number: str | None, continuation_token: str | None, producer_timestamp: float | None
    ) -> None:
        """Every frame of the fragment has been handed to the pipeline."""
        if number is None:
            return
        with self._lock:
            entry = self._entry(number)
            entry.read = True
            entry.continuation_token = continuation_token
            entry.producer_timestamp = producer_timestamp
        self.advance()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._fragments)

    def advance(self) -> Checkpoint | None:
        """Move the checkpoint as far as the done fragments allow; the new checkpoint, if any."""
        with self._lock:
            if not self._fragments or self._event_open:
                return None
            pending: set[str] | None = None
            done: _Fragment | None = None
            while self._fragments:
                entry = next(iter(self._fragments.values()))
                if not entry.read or entry.pending_frames > 0:
                    break
                if entry.alerts:
                    if pending is None:
                        pending = self.pending_alerts()
                    entry.alerts &= pending
                    if entry.alerts:
                        break
                done = self._fragments.popitem(last=False)[1]
            if done is None:
                return None
            checkpoint = Checkpoint(
                camera_id=self.camera_id,
                fragment_number=done.number,
                continuation_token=done.continuation_token,
                producer_timestamp=done.producer_timestamp,
            )
            self.checkpoint = checkpoint
        if self.store is not None:
            try:
                self.store.save(checkpoint)
            except (ClientError, BotoCoreError) as exc:  # the next fragment's write retries it
                self.save_errors += 1
                logger.warning(
                    "checkpoint write failed camera=%s fragment=%s: %s",
                    self.camera_id,
                    checkpoint.fragment_number,
                    exc,
                )
        return checkpoint
