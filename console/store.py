"""Alert history queries, reviews and their audit, on the tables in `tables`.

Every listing is a DynamoDB `Query` on a key: one camera (the table), one site (GSI `by-site`),
several sites (one query per site, merged by time) or every site (GSI `by-month`, newest month
first). Pages are cut on the sort key `sk` (`<started_at>#<alert_id>`, unique per alert): the cursor
of the next page is the `sk` of the last row shown, so the same cursor works on every partition.
Other filters (severity, event type, review state) are `FilterExpression`s on those queries; a query
reads at most `MAX_PAGES_PER_PARTITION` pages per request and the cursor resumes where it stopped.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alert_lambda.history import ALERT_ID_INDEX, MONTH_INDEX, SITE_INDEX
from console.access import SiteAccess
from contracts.alert import AlertRecord, Severity, utc_iso

logger = logging.getLogger(__name__)

Verdict = Literal["true_incident", "false_alarm"]
ReviewState = Literal["any", "unreviewed", "true_incident", "false_alarm"]
VERDICT_TEXT: dict[str, str] = {"true_incident": "true incident", "false_alarm": "false alarm"}
UNREVIEWED = "unreviewed"

MAX_PAGES_PER_PARTITION = 20
MONTHS_BACK = 24
"""With no start date, the all-sites listing looks this many months back at most."""
MAX_QUERIES_PER_LIST = 40
"""DynamoDB queries one listing request may make at most (all partitions and months together); when
they run out the page ends early and its cursor resumes where the search stopped (S1: a filter that
matches nothing over centuries of months is ~24,000 queries otherwise)."""
MAX_CURSOR_CHARS = 200
OLDEST_DAY = date(2000, 1, 1)
"""Dates before this are refused (400): no alert history is older."""
_LOW_KEY, _HIGH_KEY = "0", "~"  # below and above every `sk` (they start with a 4-digit year)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class ReviewConflict(RuntimeError):
    """Someone else reviewed the alert between the page being shown and this review."""


@dataclass(frozen=True)
class SeenReview:
    """The review state a form was rendered with: `label` None = unreviewed; `version` counts the
    reviews (0 for an alert reviewed before versions were written, with its label)."""

    label: str | None
    version: int

    @property
    def token(self) -> str:
        return f"{self.version}:{self.label or UNREVIEWED}"

    @classmethod
    def parse(cls, token: str) -> SeenReview:
        version, _, label = token.partition(":")
        if not version.isdigit() or label not in (UNREVIEWED, *VERDICT_TEXT):
            raise ValueError(f"not a review state: {token[:40]!r}")
        return cls(None if label == UNREVIEWED else label, int(version))

    def describe(self) -> str:
        return "not reviewed" if self.label is None else VERDICT_TEXT.get(self.label, self.label)


def _valid_cursor(value: str | None) -> str | None:
    """A cursor is an `sk` (`<started_at>#<alert_id>`) or a day followed by `~` (resume below that
    day's end); anything else is refused as a bad filter (400), never a 500."""
    if value is None:
        return None
    if len(value) > MAX_CURSOR_CHARS or not value.isprintable() or len(value) < 11 or value[10] not in "T~":
        raise ValueError("not a cursor of this listing")
    date.fromisoformat(value[:10])  # ValueError for 2026-13-45 or zzz
    return value


class AlertFilter(BaseModel):
    """What the alert list shows; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(default=None, description="Only this site.")
    camera: str | None = Field(default=None, description="Only this camera.")
    severity: Severity | None = Field(default=None, description="Only this severity.")
    event_type: str | None = Field(default=None, description="Only this event type.")
    date_from: date | None = Field(default=None, description="Events starting on or after this day (UTC).")
    date_to: date | None = Field(default=None, description="Events starting on or before this day (UTC).")
    review: ReviewState = Field(default="any", description="Review state.")
    cursor: str | None = Field(default=None, description="`sk` of the last row of the previous page.")

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        return _valid_cursor(value)

    @field_validator("date_from", "date_to")
    @classmethod
    def _day(cls, value: date | None) -> date | None:
        if value is not None and value < OLDEST_DAY:
            raise ValueError(f"must be on or after {OLDEST_DAY.isoformat()}")
        return value

    @model_validator(mode="after")
    def _range(self) -> AlertFilter:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        return self

    @classmethod
    def from_query(cls, params: dict[str, str]) -> AlertFilter:
        known = {name: value for name, value in params.items() if name in cls.model_fields and value}
        return cls.model_validate(known)


@dataclass(frozen=True)
class Review:
    label: Verdict
    by: str
    at: str
    version: int = 0

    @property
    def text(self) -> str:
        return VERDICT_TEXT[self.label]


@dataclass(frozen=True)
class AlertRow:
    alert: AlertRecord
    sk: str
    review: Review | None

    @property
    def seen(self) -> SeenReview:
        """The review state as shown: what a review form rendered now carries."""
        return SeenReview(None, 0) if self.review is None else SeenReview(self.review.label, self.review.version)


@dataclass(frozen=True)
class AlertPage:
    rows: list[AlertRow]
    next_cursor: str | None
    searched_to: str | None = None
    """Set when the query budget ran out before the page was full: the day the search reached."""


@dataclass(frozen=True)
class AuditEntry:
    at: str
    operator: str
    before: str
    after: str


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _row(item: dict[str, Any]) -> AlertRow | None:
    plain = _plain(item)
    try:
        alert = AlertRecord.model_validate_json(plain["alert"])
    except (KeyError, ValidationError) as exc:
        logger.warning("history item %s/%s unreadable: %s", plain.get("camera_id"), plain.get("sk"), exc)
        return None
    review = None
    if plain.get("review_label") in VERDICT_TEXT:
        review = Review(plain["review_label"], str(plain.get("reviewed_by", "?")), str(plain.get("reviewed_at", "")),
                        int(plain.get("review_version", 0)))
    return AlertRow(alert=alert, sk=str(plain["sk"]), review=review)


@dataclass
class _Partition:
    index: str | None
    key_name: str
    key_value: str


@dataclass
class _Slice:
    items: list[dict[str, Any]]
    resume_sk: str | None  # set when the read budget ran out before the partition was exhausted
    queries: int = 0


class AlertStore:
    def __init__(self, dynamodb: Any, history_table: str, audit_table: str) -> None:
        self.dynamodb = dynamodb
        self.history_table = history_table
        self.audit_table = audit_table

    # -- listing ------------------------------------------------------------------------------------

    def list(self, access: SiteAccess, flt: AlertFilter, page_size: int = 25) -> AlertPage:
        """One page of alerts the operator may see, newest first."""
        if access.empty or (flt.site and not access.allows(flt.site)):
            return AlertPage([], None)
        low = flt.date_from.isoformat() if flt.date_from else _LOW_KEY
        high = f"{flt.date_to.isoformat()}{_HIGH_KEY}" if flt.date_to else _HIGH_KEY
        if flt.cursor:
            high = min(high, flt.cursor)
        if low > high:
            return AlertPage([], None)
        site_filter = None if access.all_sites or flt.site else access.sites
        if flt.camera:
            partitions = [_Partition(None, "camera_id", flt.camera)]
            site_filter = {flt.site} if flt.site else site_filter
        elif flt.site:
            partitions = [_Partition(SITE_INDEX, "site", flt.site)]
        elif not access.all_sites:
            partitions = [_Partition(SITE_INDEX, "site", site) for site in sorted(access.sites)]
            site_filter = None  # each partition is an allowed site
        else:
            return self._list_by_month(flt, low, high, page_size)
        pages = max(1, min(MAX_PAGES_PER_PARTITION, MAX_QUERIES_PER_LIST // len(partitions)))
        slices = [
            self._read(part, low, high, flt, site_filter, page_size + 1, exclude=flt.cursor, max_pages=pages)
            for part in partitions
        ]
        return self._merge(slices, page_size)

    def _list_by_month(self, flt: AlertFilter, low: str, high: str, page_size: int) -> AlertPage:
        newest = min(datetime.now(UTC).date(), flt.date_to or date.max)
        if flt.cursor:
            newest = min(newest, date.fromisoformat(flt.cursor[:10]))
        oldest = flt.date_from or (newest.replace(day=1) - timedelta(days=31 * MONTHS_BACK))
        items: list[dict[str, Any]] = []
        budget = MAX_QUERIES_PER_LIST
        for month in _months_desc(newest, oldest):
            if budget <= 0:  # out of queries: resume below the end of this month, not read yet
                return self._merge([_Slice(items, f"{_month_end(month).isoformat()}{_HIGH_KEY}")], page_size)
            part = _Partition(MONTH_INDEX, "month", month)
            chunk = self._read(part, low, high, flt, None, page_size + 1 - len(items), exclude=flt.cursor,
                               max_pages=min(MAX_PAGES_PER_PARTITION, budget))
            budget -= chunk.queries
            items.extend(chunk.items)
            if chunk.resume_sk is not None:
                return self._merge([_Slice(items, chunk.resume_sk)], page_size)
            if len(items) > page_size:
                break
        return self._merge([_Slice(items, None)], page_size)

    def _merge(self, slices: list[_Slice], page_size: int) -> AlertPage:
        floor = max((s.resume_sk for s in slices if s.resume_sk is not None), default=None)
        candidates = sorted(
            (item for s in slices for item in s.items), key=lambda item: item["sk"]["S"], reverse=True
        )
        if floor is not None:
            candidates = [item for item in candidates if item["sk"]["S"] >= floor]
        more = len(candidates) > page_size
        shown = candidates[:page_size]
        rows = [row for row in (_row(item) for item in shown) if row is not None]
        if more:
            next_cursor: str | None = shown[-1]["sk"]["S"]
        else:
            next_cursor = floor
        return AlertPage(rows, next_cursor, searched_to=floor[:10] if floor is not None and not more else None)

    def _read(
        self,
        part: _Partition,
        low: str,
        high: str,
        flt: AlertFilter,
        sites: frozenset[str] | set[str] | None,
        want: int,
        *,
        exclude: str | None,
        max_pages: int = MAX_PAGES_PER_PARTITION,
    ) -> _Slice:
        names = {"#pk": part.key_name, "#sk": "sk"}
        values: dict[str, Any] = {":pk": part.key_value, ":lo": low, ":hi": high}
        conditions = []
        if flt.severity:
            names["#sev"] = "severity"
            values[":sev"] = flt.severity.value
            conditions.append("#sev = :sev")
        if flt.event_type:
            names["#evt"] = "event_type"
            values[":evt"] = flt.event_type
            conditions.append("#evt = :evt")
        if flt.review == UNREVIEWED:
            names["#rl"] = "review_label"
            conditions.append("attribute_not_exists(#rl)")
        elif flt.review != "any":
            names["#rl"] = "review_label"
            values[":rl"] = flt.review
            conditions.append("#rl = :rl")
        if sites is not None:
            names["#site"] = "site"
            placeholders = []
            for number, site in enumerate(sorted(sites)):
                values[f":site{number}"] = site
                placeholders.append(f":site{number}")
            conditions.append(f"#site IN ({', '.join(placeholders)})")
        kwargs: dict[str, Any] = {
            "TableName": self.history_table,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {name: _serializer.serialize(v) for name, v in values.items()},
            "ScanIndexForward": False,
            "Limit": want + 1 if not conditions else max(100, want + 1),
        }
        if part.index:
            kwargs["IndexName"] = part.index
        if conditions:
            kwargs["FilterExpression"] = " AND ".join(conditions)
        items: list[dict[str, Any]] = []
        for number in range(1, max_pages + 1):
            response = self.dynamodb.query(**kwargs)
            items.extend(item for item in response["Items"] if item["sk"]["S"] != exclude)
            last = response.get("LastEvaluatedKey")
            if len(items) >= want or not last:
                return _Slice(items[:want], None, number)
            kwargs["ExclusiveStartKey"] = last
        logger.info("listing %s=%s stopped after %d pages; the cursor resumes it", part.key_name,
                    part.key_value, max_pages)
        return _Slice(items, kwargs["ExclusiveStartKey"]["sk"]["S"], max_pages)

    # -- triage: neighbours and the next alert to review ---------------------------------------------

    def older(self, access: SiteAccess, sk: str, review: ReviewState = "any") -> AlertRow | None:
        """The newest alert started before the one at `sk` (with that review state), or None."""
        page = self.list(access, AlertFilter(cursor=sk, review=review), page_size=1)
        return page.rows[0] if page.rows else None

    def newer(self, access: SiteAccess, sk: str) -> AlertRow | None:
        """The oldest alert started after the one at `sk`, or None (at most `MONTHS_BACK` months on)."""
        if access.empty:
            return None
        if access.all_sites:
            start = date.fromisoformat(sk[:10])
            months = [m for m in _months_desc(datetime.now(UTC).date(), start)][::-1][:MONTHS_BACK]
            for month in months:
                found = self._first_after(MONTH_INDEX, "month", month, sk)
                if found is not None:
                    return found
            return None
        candidates = [self._first_after(SITE_INDEX, "site", site, sk) for site in sorted(access.sites)]
        return min((c for c in candidates if c is not None), key=lambda r: r.sk, default=None)

    def next_unreviewed(self, access: SiteAccess, before_sk: str | None) -> AlertRow | None:
        """The next alert to review: the newest unreviewed one started before `before_sk`, else the
        newest unreviewed one of all (so a shift works down the list and then picks up new ones)."""
        if before_sk:
            found = self.older(access, before_sk, review=UNREVIEWED)
            if found is not None:
                return found
        page = self.list(access, AlertFilter(review=UNREVIEWED), page_size=1)
        return page.rows[0] if page.rows else None

    def _first_after(self, index: str, key_name: str, key_value: str, sk: str) -> AlertRow | None:
        response = self.dynamodb.query(
            TableName=self.history_table, IndexName=index,
            KeyConditionExpression="#pk = :pk AND #sk > :sk",
            ExpressionAttributeNames={"#pk": key_name, "#sk": "sk"},
            ExpressionAttributeValues={":pk": {"S": key_value}, ":sk": {"S": sk}},
            ScanIndexForward=True, Limit=1,
        )
        return _row(response["Items"][0]) if response["Items"] else None

    # -- one alert ----------------------------------------------------------------------------------

    def get(self, alert_id: str, access: SiteAccess) -> AlertRow | None:
        """The alert with this id, or None when there is none or it is another site's."""
        response = self.dynamodb.query(
            TableName=self.history_table,
            IndexName=ALERT_ID_INDEX,
            KeyConditionExpression="alert_id = :id",
            ExpressionAttributeValues={":id": {"S": alert_id}},
            Limit=1,
        )
        if not response["Items"]:
            return None
        key = {name: response["Items"][0][name] for name in ("camera_id", "sk")}
        item = self.dynamodb.get_item(TableName=self.history_table, Key=key, ConsistentRead=True).get("Item")
        row = _row(item) if item else None
        if row is None or not access.allows(row.alert.site):
            return None
        return row

    def camera_alerts_around(self, alert: AlertRecord, window: timedelta) -> list[AlertRow]:
        """The camera's alerts that started within `window` of this one, oldest first."""
        response = self.dynamodb.query(
            TableName=self.history_table,
            KeyConditionExpression="camera_id = :c AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":c": {"S": alert.camera_id},
                ":lo": {"S": utc_iso(alert.started_at - window)},
                ":hi": {"S": utc_iso(alert.started_at + window) + _HIGH_KEY},
            },
            Limit=500,
        )
        return [row for row in (_row(item) for item in response["Items"]) if row is not None]

    def latest_with_snapshot(self, camera_id: str, look_back: int = 20) -> AlertRow | None:
        """The camera's newest alert that has a snapshot, among its `look_back` newest (one query):
        the still a camera's scene page draws its zones over."""
        response = self.dynamodb.query(
            TableName=self.history_table,
            KeyConditionExpression="camera_id = :c",
            ExpressionAttributeValues={":c": {"S": camera_id}},
            ScanIndexForward=False,
            Limit=look_back,
        )
        rows = (_row(item) for item in response["Items"])
        return next((row for row in rows if row is not None and row.alert.snapshot is not None), None)

    def count_since(self, camera_id: str, since: datetime) -> int:
        """How many of the camera's alerts started at or after `since`."""
        kwargs: dict[str, Any] = {
            "TableName": self.history_table,
            "KeyConditionExpression": "camera_id = :c AND sk >= :since",
            "ExpressionAttributeValues": {":c": {"S": camera_id}, ":since": {"S": utc_iso(since)}},
            "Select": "COUNT",
        }
        total = 0
        while True:
            response = self.dynamodb.query(**kwargs)
            total += int(response["Count"])
            if "LastEvaluatedKey" not in response:
                return total
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- reviews ------------------------------------------------------------------------------------

    def review(self, row: AlertRow, label: Verdict, operator: str, now: datetime | None = None,
               seen: SeenReview | None = None) -> Review:
        """Record the operator's verdict and its audit entry in one transaction.

        The update is conditional on the review state the operator saw (`seen`, what their form was
        rendered with; `row`'s own state when not given): unreviewed, or the review version it had.
        Every review bumps `review_version`, so a form loaded before any later review - even one
        that set the same label - is refused with `ReviewConflict`, never applied over it."""
        at = utc_iso(now or datetime.now(UTC))
        seen = seen or row.seen
        before = seen.label or UNREVIEWED
        update: dict[str, Any] = {
            "TableName": self.history_table,
            "Key": {"camera_id": {"S": row.alert.camera_id}, "sk": {"S": row.sk}},
            "UpdateExpression": "SET review_label = :label, reviewed_by = :by, reviewed_at = :at, "
                                "review_version = :next",
            "ExpressionAttributeValues": {":label": {"S": label}, ":by": {"S": operator}, ":at": {"S": at},
                                          ":next": {"N": str(seen.version + 1)}},
        }
        if seen.label is None:
            update["ConditionExpression"] = "attribute_exists(sk) AND attribute_not_exists(review_label)"
        elif seen.version == 0:  # reviewed before versions were written
            update["ConditionExpression"] = "attribute_not_exists(review_version) AND review_label = :before"
            update["ExpressionAttributeValues"][":before"] = {"S": seen.label}
        else:
            update["ConditionExpression"] = "review_version = :seen"
            update["ExpressionAttributeValues"][":seen"] = {"N": str(seen.version)}
        audit = {
            "alert_id": row.alert.alert_id,
            "at": f"{at}#{secrets.token_hex(4)}",
            "operator": operator,
            "before": before,
            "after": label,
            "camera_id": row.alert.camera_id,
            "site": row.alert.site,
        }
        put = {
            "TableName": self.audit_table,
            "Item": {name: {"S": value} for name, value in audit.items()},
            "ConditionExpression": "attribute_not_exists(alert_id)",
        }
        try:
            self.dynamodb.transact_write_items(TransactItems=[{"Update": update}, {"Put": put}])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise ReviewConflict(
                    f"alert {row.alert.alert_id} was reviewed by someone else meanwhile; reload the page"
                ) from exc
            raise
        logger.info("review alert_id=%s camera=%s by %s: %s -> %s", row.alert.alert_id,
                    row.alert.camera_id, operator, before, label)
        return Review(label, operator, at, seen.version + 1)

    def audit_trail(self, alert_id: str) -> list[AuditEntry]:
        """Every review of the alert, newest first."""
        response = self.dynamodb.query(
            TableName=self.audit_table,
            KeyConditionExpression="alert_id = :id",
            ExpressionAttributeValues={":id": {"S": alert_id}},
            ScanIndexForward=False,
        )
        return [
            AuditEntry(at=p["at"].split("#")[0], operator=p["operator"], before=p["before"], after=p["after"])
            for p in (_plain(item) for item in response["Items"])
        ]


def _months_desc(newest: date, oldest: date) -> Iterator[str]:
    """`YYYY-MM` from `newest`'s month back to `oldest`'s, lazily (the caller stops on its budget)."""
    year, month = newest.year, newest.month
    while (year, month) >= (oldest.year, oldest.month):
        yield f"{year:04d}-{month:02d}"
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)


def _month_end(month: str) -> date:
    year, number = int(month[:4]), int(month[5:7])
    first_of_next = date(year + (number == 12), number % 12 + 1, 1)
    return first_of_next - timedelta(days=1)
