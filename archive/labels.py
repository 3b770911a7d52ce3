"""Operator feedback on an alert, and the manifest `events` it becomes.

The feedback object, `s3://<bucket>/feedback/camera=<id>/<alert_id>.json`, is `FeedbackLabel` as
JSON; `python -m archive.feedback` writes it, and a console may write the same object. Training
reads the labels from the manifest line(s) of the alert's clip, as `events`:

- a true incident: the frames from the event start to the end of the clip, label `anomaly`;
- a false alarm: the same frames, label `false_alarm` (normal footage the model scored high: a
  training run can add it to its normal frames, or use it to raise the camera's threshold).

Frames before the event start (the pre-roll) are left unlabelled, i.e. normal.
"""

from __future__ import annotations

import bisect
import logging
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

from archive.local_cut import ClipProbe
from contracts.alert import utc_iso
from contracts.manifest import LabelledEvent

logger = logging.getLogger(__name__)

Verdict = Literal["true_incident", "false_alarm"]
ANOMALY_LABEL = "anomaly"
FALSE_ALARM_LABEL = "false_alarm"
EVENT_LABELS: dict[str, str] = {"true_incident": ANOMALY_LABEL, "false_alarm": FALSE_ALARM_LABEL}
EVENT_AT_FIELD = "event_at"
"""Extra manifest field on alert clip lines: the event start (UTC ISO), where labels begin."""


class FeedbackLabel(BaseModel):
    """An operator's verdict on one alert (`feedback/camera=<id>/<alert_id>.json`)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["1"] = "1"
    alert_id: str = Field(min_length=1, description="The alert's id (AlertRecord.alert_id).")
    camera_id: str = Field(min_length=1, description="The alert's camera.")
    label: Verdict = Field(description="'true_incident' or 'false_alarm'.")
    operator: str = Field(min_length=1, description="Who decided (user name or console principal).")
    labelled_at: AwareDatetime = Field(description="When the verdict was given (UTC).")
    note: str | None = Field(default=None, max_length=2000, description="Free text, optional.")

    @field_serializer("labelled_at")
    def _iso(self, value: datetime) -> str:
        return utc_iso(value)


def event_start_frame(probe: ClipProbe, clip_start: datetime, event_at: datetime | None) -> int:
    """Index of the first frame at or after `event_at` (0 when unknown or before the clip)."""
    if event_at is None:
        return 0
    offset_s = (event_at - clip_start).total_seconds()
    index = bisect.bisect_left(probe.frame_times_s, offset_s - 1e-3)
    return min(max(index, 0), probe.frames - 1)


def events_for(
    label: FeedbackLabel | None, probe: ClipProbe, clip_start: datetime, event_at: datetime | None
) -> list[LabelledEvent]:
    """The manifest `events` of one alert clip given the operator's verdict (none without one)."""
    if label is None:
        return []
    first = event_start_frame(probe, clip_start, event_at)
    return [LabelledEvent(start_frame=first, end_frame=probe.frames - 1, label=EVENT_LABELS[label.label])]
