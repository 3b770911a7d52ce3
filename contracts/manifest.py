"""One line of a clip manifest (JSON Lines): written by the archiver, read by `python -m training`
and by SageMaker Ground Truth (`source-ref`).

`source-ref` is an `s3://bucket/key` URI for archived clips, or a path relative to the manifest's
folder for labelled data sets. A clip is a video file or a folder of frame images sorted by name.
`events` lists labelled frame ranges (0-based, inclusive); a clip with none is all normal."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal["1"] = "1"


class LabelledEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_frame: int = Field(ge=0)
    end_frame: int = Field(ge=0, description="Inclusive.")
    label: str = "anomaly"


class ManifestLine(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    source_ref: str = Field(alias="source-ref")
    camera_id: str | None = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    kind: Literal["normal", "alert"] | None = None
    alert_id: str | None = None
    events: list[LabelledEvent] = Field(default_factory=list)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)
