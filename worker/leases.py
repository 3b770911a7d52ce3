"""Camera leases: N worker tasks share the cameras through items in the state table (DynamoDB),
so an ECS service can scale from 1 to N tasks and back with every camera owned by exactly one live
task.

Items (key `id`): `lease#<camera>` {owner, expires_at} and `worker#<worker_id>` {expires_at}
(the worker's heartbeat). Each `tick()` of a worker, every `lease_s / 3`:
1. heartbeat: its `worker#` item, expiring `lease_s` from now;
2. fair share = ceil(cameras / live workers) (live: heartbeat not expired);
3. renew its leases (conditional on still owning them); a lease it cannot renew is lost;
4. over its share: release the extra leases (conditional delete), so newcomers get them at once;
5. under its share: take free or expired leases (conditional put: `attribute_not_exists(id) OR
   expires_at < now`), so two workers racing for one camera cannot both win.
A lease counts as held only while `now < expires_at - margin` by the worker's own clock, so a
worker that stalls stops reading before anyone else may take over. `release_all()` (SIGTERM)
deletes the worker's leases and heartbeat. Time comes from an injectable clock (tests)."""

from __future__ import annotations

import logging
import math
import os
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from worker.env import ENV_STATE_TABLE

logger = logging.getLogger(__name__)

LEASE_PREFIX = "lease#"
WORKER_PREFIX = "worker#"
CONDITION_FAILED = "ConditionalCheckFailedException"


@dataclass(frozen=True)
class LeaseSettings:
    lease_s: float = 30.0
    """How long a lease or a heartbeat lasts without renewal."""
    margin_s: float = 3.0
    """A lease counts as held only until `expires_at - margin_s` (clock skew, a stalled task)."""

    @property
    def heartbeat_s(self) -> float:
        return self.lease_s / 3


@dataclass
class TickResult:
    owned: set[str] = field(default_factory=set)
    acquired: set[str] = field(default_factory=set)
    released: set[str] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)
    live_workers: int = 0
    fair_share: int = 0


class LeaseManager:
    def __init__(
        self,
        worker_id: str,
        cameras: Iterable[str],
        *,
        table_name: str | None = None,
        client: Any = None,
        settings: LeaseSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.worker_id = worker_id
        self.cameras = sorted(set(cameras))
        self.table_name = table_name or os.environ.get(ENV_STATE_TABLE) or "vigil-state"
        self.client = client or boto3.client("dynamodb")
        self.settings = settings or LeaseSettings()
        self.clock = clock
        self._expires: dict[str, float] = {}
        """Cameras this worker holds -> when the lease expires."""

    @property
    def owned(self) -> set[str]:
        """The cameras this worker may read now (by its own clock)."""
        now = self.clock()
        return {cam for cam, expires in self._expires.items() if now < expires - self.settings.margin_s}

    def tick(self) -> TickResult:
        now = self.clock()
        result = TickResult()
        self._heartbeat(now)
        leases, live = self._scan(now)
        result.live_workers = max(1, live)
        result.fair_share = math.ceil(len(self.cameras) / result.live_workers)
        for camera in sorted(self._expires):
            if not self._renew(camera, now):
                result.lost.add(camera)
        extra = len(self._expires) - result.fair_share
        for camera in sorted(self._expires, reverse=True)[: max(0, extra)]:
            self._release(camera)
            result.released.add(camera)
        if len(self._expires) < result.fair_share:
            free = [
                cam
                for cam in self._preference()
                if cam not in self._expires and (cam not in leases or leases[cam][1] < now)
            ]
            for camera in free:
                if len(self._expires) >= result.fair_share:
                    break
                if self._acquire(camera, now, leases.get(camera)):
                    result.acquired.add(camera)
        result.owned = set(self._expires)
        if result.acquired or result.released or result.lost:
            logger.info(
                "leases worker=%s live_workers=%d fair_share=%d owned=%s acquired=%s released=%s lost=%s",
                self.worker_id,
                result.live_workers,
                result.fair_share,
                sorted(result.owned),
                sorted(result.acquired),
                sorted(result.released),
                sorted(result.lost),
            )
        return result

    def release_all(self) -> None:
        """SIGTERM: hand every camera back now, and leave the worker count."""
        for camera in sorted(self._expires):
            self._release(camera)
        self.client.delete_item(TableName=self.table_name, Key={"id": {"S": WORKER_PREFIX + self.worker_id}})
        logger.info("leases released worker=%s", self.worker_id)

    # -- DynamoDB ----------------------------------------------------------------------------------

    def _preference(self) -> list[str]:
        """Cameras in an order of this worker's own (a stable hash), so workers try different ones."""
        return sorted(self.cameras, key=lambda cam: zlib.crc32(f"{self.worker_id}|{cam}".encode()))

    def _heartbeat(self, now: float) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item={
                "id": {"S": WORKER_PREFIX + self.worker_id},
                "expires_at": {"N": repr(now + self.settings.lease_s)},
            },
        )

    def _scan(self, now: float) -> tuple[dict[str, tuple[str, float]], int]:
        leases: dict[str, tuple[str, float]] = {}
        live = 0
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "begins_with(id, :lease) OR begins_with(id, :worker)",
            "ExpressionAttributeValues": {":lease": {"S": LEASE_PREFIX}, ":worker": {"S": WORKER_PREFIX}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.scan(**kwargs)
            for item in page.get("Items", []):
                key, expires = item["id"]["S"], float(item["expires_at"]["N"])
                if key.startswith(WORKER_PREFIX):
                    live += expires > now
                else:
                    leases[key[len(LEASE_PREFIX) :]] = (item["owner"]["S"], expires)
            if "LastEvaluatedKey" not in page:
                return leases, live
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _acquire(self, camera: str, now: float, seen: tuple[str, float] | None) -> bool:
        expires = now + self.settings.lease_s
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "id": {"S": LEASE_PREFIX + camera},
                    "owner": {"S": self.worker_id},
                    "expires_at": {"N": repr(expires)},
                },
                ConditionExpression="attribute_not_exists(id) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": repr(now)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != CONDITION_FAILED:
                raise
            return False  # another worker was faster
        if seen is not None:
            logger.info("lease taken over camera=%s worker=%s from=%s", camera, self.worker_id, seen[0])
        self._expires[camera] = expires
        return True

    def _renew(self, camera: str, now: float) -> bool:
        expires = now + self.settings.lease_s
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": LEASE_PREFIX + camera}},
                UpdateExpression="SET expires_at = :expires",
                ConditionExpression="#owner = :me",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":expires": {"N": repr(expires)}, ":me": {"S": self.worker_id}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != CONDITION_FAILED:
                raise
            del self._expires[camera]
            logger.warning("lease lost camera=%s worker=%s", camera, self.worker_id)
            return False
        self._expires[camera] = expires
        return True

    def _release(self, camera: str) -> None:
        self._expires.pop(camera, None)
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"id": {"S": LEASE_PREFIX + camera}},
                ConditionExpression="#owner = :me",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":me": {"S": self.worker_id}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != CONDITION_FAILED:
                raise
