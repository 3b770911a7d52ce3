"""The inference response contract: `input_size` added compatibly (old answers parse, old clients read new ones)."""

import json

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from contracts.inference import FrameResult, InferenceResponse

OLD_ANSWER = '{"schema_version": "1", "model_version": "m1", "threshold": 2.0, "temporal_window": 6, ' \
             '"results": [{"score": 1.5, "regions": []}]}'


class ResponseBeforeInputSize(BaseModel):
    """`InferenceResponse` as workers deployed before `input_size` declare it (unknown fields forbidden)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: str
    model_version: str
    threshold: float | None = None
    temporal_window: int = 1
    results: list[FrameResult]


def test_an_answer_without_input_size_still_parses():
    # GIVEN an answer of an endpoint from before `input_size`
    # WHEN a current client reads it
    response = InferenceResponse.model_validate_json(OLD_ANSWER)

    # THEN it parses, with the input size unknown
    assert response == InferenceResponse(
        model_version="m1", threshold=2.0, temporal_window=6, input_size=None, results=[FrameResult(score=1.5)]
    )


def test_input_size_round_trips_as_height_and_width_and_is_left_out_when_unknown():
    # GIVEN a response that names the model's input size, and one that does not
    named = InferenceResponse(model_version="m1", temporal_window=6, input_size=(64, 96), results=[])
    unnamed = InferenceResponse(model_version="m1", temporal_window=6, results=[])

    # WHEN they are serialised
    named_json, unnamed_json = json.loads(named.model_dump_json()), json.loads(unnamed.model_dump_json())

    # THEN the size is [height, width] and reads back; without one the key is absent
    assert named_json["input_size"] == [64, 96]
    assert InferenceResponse.model_validate(named_json) == named
    assert "input_size" not in unnamed_json
    # AND a client from before the field (unknown fields forbidden) still reads an answer without it
    assert ResponseBeforeInputSize.model_validate(unnamed_json).temporal_window == 6


@pytest.mark.parametrize("size", [[0, 96], [64], [64, 96, 3], [-1, 8]])
def test_input_size_must_be_two_positive_sides(size):
    with pytest.raises(ValidationError, match="input_size"):
        InferenceResponse.model_validate({"model_version": "m1", "input_size": size, "results": []})
