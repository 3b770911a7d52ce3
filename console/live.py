"""Live updates for open pages: new alerts and camera state changes, as server-sent events.

`GET /events` (an `EventSource`) polls the store server-side every `POLL_S` and sends:
- `alert`: an alert recorded (`recorded_at`, written by `alert_lambda.history`) after the page was
  rendered (`?since=`, then the stream's own watermark; `Last-Event-ID` on a reconnect), among
  those that started in the last `LOOKBACK` - a bounded key query per month (all sites) or per site;
- `camera`: a camera whose shown state changed ("analysing" -> "no heartbeat", ...), and every
  camera once at the start (`initial: true`), so the Cameras page and the banner stay current.
Each poll is at most two queries per partition plus one scan of the state table's status items, in
the thread pool; a stream ends after `MAX_STREAM_S` and the browser reconnects where it left off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from alert_lambda.history import MONTH_INDEX, SITE_INDEX
from console.access import SiteAccess
from console.cameras import camera_row, read_statuses
from console.store import AlertRow, AlertStore, _row
from contracts.alert import utc_iso

logger = logging.getLogger(__name__)

POLL_S = 1.0
HEARTBEAT_S = 15.0
MAX_STREAM_S = 600.0
LOOKBACK = timedelta(hours=1)
"""Alerts that started longer ago than this are not looked for (one is recorded seconds after it starts)."""
WATERMARK_SKEW = timedelta(seconds=5)
"""Alerts recorded this long before the watermark are looked at again (clocks of writers differ); the
stream's set of sent ids keeps them from being sent twice."""
MAX_ALERTS_PER_POLL = 50

_serializer = TypeSerializer()


def parse_since(value: str | None, now: datetime) -> datetime:
    """The watermark a stream starts from: `since` / `Last-Event-ID` (ISO), at most `LOOKBACK` back."""
    if value:
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return max(min(parsed, now), now - LOOKBACK)
        except ValueError:
            logger.info("live stream: ignoring an unreadable since %r", value[:40])
    return now


def recorded_since(store: AlertStore, access: SiteAccess, since: datetime, now: datetime) -> list[AlertRow]:
    """Alerts the operator may see, recorded at or after `since` and started within `LOOKBACK`, oldest first."""
    low = utc_iso(now - LOOKBACK)
    if access.empty:
        return []
    if access.all_sites:
        months = sorted({f"{now - LOOKBACK:%Y-%m}", f"{now:%Y-%m}"})
        partitions = [(MONTH_INDEX, "month", month) for month in months]
    else:
        partitions = [(SITE_INDEX, "site", site) for site in sorted(access.sites)]
    rows: dict[str, AlertRow] = {}
    for index, key_name, key_value in partitions:
        response = store.dynamodb.query(
            TableName=store.history_table,
            IndexName=index,
            KeyConditionExpression="#pk = :pk AND #sk > :lo",
            FilterExpression="#rec >= :since",
            ExpressionAttributeNames={"#pk": key_name, "#sk": "sk", "#rec": "recorded_at"},
            ExpressionAttributeValues={":pk": _serializer.serialize(key_value), ":lo": {"S": low},
                                       ":since": {"S": utc_iso(since)}},
            ScanIndexForward=False,
            Limit=200,
        )
        for item in response["Items"]:
            row = _row(item)
            if row is not None and access.allows(row.alert.site):
                rows[row.alert.alert_id] = row
    return sorted(rows.values(), key=lambda r: r.sk)[-MAX_ALERTS_PER_POLL:]


@dataclass
class LiveFeed:
    """One stream's state: what it has sent, so each poll sends only what is new."""

    store: AlertStore
    dynamodb: Any
    state_table: str
    access: SiteAccess
    watermark: datetime
    stale_after_s: float
    sent: set[str] = field(default_factory=set)
    camera_states: dict[str, str] | None = None
    describe: Callable[[AlertRow], dict[str, Any]] | None = None
    """Extra fields of an `alert` event (the page's own time format, a thumbnail link)."""
    floor: datetime | None = None
    """The stream's starting point: what was recorded before it was on the page already."""

    def __post_init__(self) -> None:
        self.floor = self.floor or self.watermark

    def poll(self, now: datetime | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(event name, data) of what changed since the last poll."""
        now = now or datetime.now(UTC)
        events: list[tuple[str, dict[str, Any]]] = []
        since = max(self.watermark - WATERMARK_SKEW, self.floor or self.watermark)
        for row in recorded_since(self.store, self.access, since, now):
            if row.alert.alert_id in self.sent:
                continue
            self.sent.add(row.alert.alert_id)
            events.append(("alert", {**alert_event(row), **(self.describe(row) if self.describe else {})}))
        self.watermark = now
        statuses, _ = read_statuses(self.dynamodb, self.state_table, self.access)
        initial = self.camera_states is None
        states = dict(self.camera_states or {})
        for status in statuses:
            row = camera_row(status, 0, now, stale_after_s=self.stale_after_s)
            if states.get(status.camera_id) != row.shown_state:
                events.append(("camera", {
                    "camera_id": status.camera_id, "site": status.site, "state": row.shown_state,
                    "was": states.get(status.camera_id), "initial": initial,
                    "updated_at": utc_iso(status.updated_at), "age_s": round(row.heartbeat_age_s),
                }))
                states[status.camera_id] = row.shown_state
        self.camera_states = states
        return events


def alert_event(row: AlertRow) -> dict[str, Any]:
    alert = row.alert
    return {
        "alert_id": alert.alert_id, "camera_id": alert.camera_id, "site": alert.site,
        "event_type": alert.event_type, "zone": alert.zone, "severity": alert.severity.value,
        "score": round(alert.score, 3), "threshold": round(alert.threshold, 3),
        "started_at": utc_iso(alert.started_at), "sk": row.sk, "seen": row.seen.token,
    }


def sse(event: str, data: dict[str, Any], event_id: str | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'))}")
    return "\n".join(lines) + "\n\n"
