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
  every fragment before it done too. Frames dropped at the live edge (queue full, see
  `WorkerConfig.live_edge_s`) or gated out count as handled; frames left in the queue at a stop do
  not, so their fragment is read again after a restart.

What a checkpoint holds besides the fragment, so that a restart continues exactly where the worker
stood (issue 22):
- `policy`: the alert policy's state after the fragment's last analysed frame (`AlertPolicy.snapshot`):
  an open event, or the over-threshold frames of one not open yet, continues under the same
  `alert_id`, and a long event no longer holds the checkpoint at its start. Opaque JSON here: its
  format is the policy's (version 2 tracks one event per event type and zone; `AlertPolicy.restore`
  still reads version 1, so a checkpoint written before zones resumes); tamper state is not kept;
- `history_from` and `history_due_s`: the fragment holding the oldest of the last `history_frames`
  sampled frames, and the sampler's schedule when it began. A restart reads from there: the frames
  up to the checkpoint (pre-roll) rebuild the model's frame history and the motion gate's reference,
  sampled on the same schedule, and are not analysed again, so the first frames after the
  checkpoint score as they would have."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict, deque
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
    history_from: str | None = None
    history_due_s: float | None = None
    policy: dict[str, Any] | None = None


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
        due = item.get("history_due_s", {}).get("N")
        policy = item.get("policy", {}).get("S")
        return Checkpoint(
            camera_id=camera_id,
            fragment_number=item["fragment_number"]["S"],
            continuation_token=item.get("continuation_token", {}).get("S"),
            producer_timestamp=float(producer) if producer is not None else None,
            updated_at=item.get("updated_at", {}).get("S", ""),
            worker_id=item.get("worker_id", {}).get("S", ""),
            history_from=item.get("history_from", {}).get("S"),
            history_due_s=float(due) if due is not None else None,
            policy=json.loads(policy) if policy is not None else None,
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
        if checkpoint.history_from is not None:
            item["history_from"] = {"S": checkpoint.history_from}
        if checkpoint.history_due_s is not None:
            item["history_due_s"] = {"N": repr(checkpoint.history_due_s)}
        if checkpoint.policy is not None:
            item["policy"] = {"S": json.dumps(checkpoint.policy, separators=(",", ":"))}
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
    policy: dict[str, Any] | None = None  # the policy after the fragment's last analysed frame
    history_from: str | None = None
    history_due_s: float | None = None


class FragmentProgress:
    """Which fragments are done; advances the checkpoint (thread-safe)."""

    def __init__(
        self,
        camera_id: str,
        *,
        store: CheckpointStore | None = None,
        pending_alerts: Callable[[], set[str]] | None = None,
        resumed: Checkpoint | None = None,
        history_frames: int = 0,
    ) -> None:
        """`pending_alerts`: the ids of the alerts not yet acknowledged by Kinesis (the publisher's
        spool); without it, an alert counts as acknowledged once raised. `resumed`: the checkpoint
        this run resumes after (its fragments up to it are pre-roll, never tracked). `history_frames`:
        how many sampled frames a restart reads again before its checkpoint."""
        self.camera_id = camera_id
        self.store = store
        self.pending_alerts = pending_alerts or set
        self.checkpoint: Checkpoint | None = resumed
        self.save_errors = 0
        self._fragments: OrderedDict[str, _Fragment] = OrderedDict()
        self._resumed_key = order_key(resumed.fragment_number) if resumed is not None else None
        self._policy = resumed.policy if resumed is not None else None
        self._sampled: deque[str] = deque(maxlen=max(1, history_frames))
        self._history = history_frames > 0
        self._due_at_start: OrderedDict[str, float | None] = OrderedDict()
        self._lock = threading.Lock()

    def _tracked(self, number: str | None) -> bool:
        """Fragments after the resumed checkpoint; pre-roll ones are not the checkpoint's business."""
        return number is not None and (self._resumed_key is None or order_key(number) > self._resumed_key)

    def _entry(self, number: str) -> _Fragment:
        entry = self._fragments.get(number)
        if entry is None:
            entry = self._fragments[number] = _Fragment(number)
        return entry

    def fragment_started(self, number: str | None, sampler_due_s: float | None) -> None:
        """The first block of a fragment reached the sampler, whose schedule was `sampler_due_s`."""
        if number is None or not self._history:
            return
        with self._lock:
            self._due_at_start[number] = sampler_due_s
            while len(self._due_at_start) > self._sampled.maxlen + 2:
                self._due_at_start.popitem(last=False)

    def frame_sampled(self, number: str | None) -> None:
        """A frame of this fragment was sampled (pre-roll or not, gated or not): the model's history."""
        if number is None or not self._history:
            return
        with self._lock:
            self._sampled.append(number)

    def frame_queued(self, number: str | None) -> None:
        if not self._tracked(number):
            return
        with self._lock:
            self._entry(number).pending_frames += 1

    def frame_done(self, number: str | None, *, policy: dict[str, Any] | None = None) -> None:
        """A queued frame is analysed (or dropped); `policy`: the alert policy's state after it."""
        if not self._tracked(number):
            return
        with self._lock:
            entry = self._fragments.get(number)
            if entry is not None:
                entry.pending_frames -= 1
                if policy is not None:
                    entry.policy = policy
        self.advance()

    def alert_raised(self, number: str | None, alert_id: str) -> None:
        if not self._tracked(number):
            return
        with self._lock:
            self._entry(number).alerts.add(alert_id)

    def fragment_read(
        self, number: str | None, continuation_token: str | None, producer_timestamp: float | None
    ) -> None:
        """Every frame of the fragment has been handed to the pipeline."""
        if not self._tracked(number):
            return
        with self._lock:
            entry = self._entry(number)
            entry.read = True
            entry.continuation_token = continuation_token
            entry.producer_timestamp = producer_timestamp
            if self._history:
                oldest = self._sampled[0] if self._sampled else number
                if oldest in self._due_at_start:
                    entry.history_from, entry.history_due_s = oldest, self._due_at_start[oldest]
        self.advance()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._fragments)

    def advance(self) -> Checkpoint | None:
        """Move the checkpoint as far as the done fragments allow; the new checkpoint, if any."""
        with self._lock:
            if not self._fragments:
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
                if done.policy is not None:
                    self._policy = done.policy
            if done is None:
                return None
            checkpoint = Checkpoint(
                camera_id=self.camera_id,
                fragment_number=done.number,
                continuation_token=done.continuation_token,
                producer_timestamp=done.producer_timestamp,
                history_from=done.history_from,
                history_due_s=done.history_due_s,
                policy=self._policy,
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
