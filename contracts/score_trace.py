"""An alert's score trace: the score of every analysed frame around the event, written by the worker
next to the alert clip (`<clip key without .mp4>.scores.json`), read by the console's alert page.

`points` are `[seconds from the event start, score]`, in time order, on the clip's timeline (the
source's media time: a file's position, or the producer's capture time on Kinesis Video Streams).
Only analysed frames have a score: frames the motion gate skipped (a still scene), dropped on a full
queue or failed at the endpoint are absent, so the trace has gaps there rather than made-up values."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal["1"] = "1"
SCORES_SUFFIX = ".scores.json"


def score_trace_key(clip_key: str) -> str:
    """`alerts/.../<start>_<end>.scores.json` for the alert clip `alerts/.../<start>_<end>.mp4`."""
    return clip_key.removesuffix(".mp4") + SCORES_SUFFIX


class ScoreTrace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["1"] = SCHEMA_VERSION
    alert_id: str
    camera_id: str = Field(min_length=1)
    threshold: float = Field(description="The threshold the alert's frames were compared with.")
    model_version: str
    pre_roll_s: float = Field(ge=0, description="The trace covers this many seconds before the event start...")
    post_roll_s: float = Field(ge=0, description="...to this many after (the alert clip's range).")
    points: list[tuple[float, float]] = Field(
        default_factory=list, description="[seconds from the event start, score] of each analysed frame."
    )
