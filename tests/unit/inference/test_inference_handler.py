"""The SageMaker handler in-process, with a tiny model trained on a real H.264 clip."""

from __future__ import annotations

import io
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contracts.inference import MAX_PAYLOAD_BYTES, InferenceResponse, Region
from inference import env
from inference.inference import (
    BadRequest,
    Batch,
    InferenceError,
    LoadedModel,
    ModelLoadError,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
    input_fn,
    model_fn,
    output_fn,
    parse_custom_attributes,
    predict_fn,
)
from inference.regions import find_regions


class Headers:
    """The toolkit's request context, as far as the handler reads it."""

    def __init__(self, **headers: str) -> None:
        self.headers = headers

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self.headers.get(key)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def image_bytes(frame: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def model(tiny_model_dir: Path) -> LoadedModel:
    return model_fn(tiny_model_dir)


@pytest.mark.parametrize(
    ("content_type", "encode", "n_frames"),
    [
        ("application/x-npy", lambda frames: npy(frames), 4),
        ("application/x-npy", lambda frames: npy(frames[0]), 1),
        ("image/jpeg", lambda frames: image_bytes(frames[0], "JPEG"), 1),
        ("image/png", lambda frames: image_bytes(frames[0], "PNG"), 1),
        ("image/png; charset=binary", lambda frames: image_bytes(frames[0], "PNG"), 1),
    ],
)
def test_handler_scores_each_content_type(model, scenes, content_type, encode, n_frames):
    # GIVEN frames of the empty scene and of an intruder, encoded in a supported content type
    normal_body, intruder_body = encode(scenes["normal"]), encode(scenes["intruder"])

    # WHEN each goes through input_fn -> predict_fn -> output_fn
    normal = InferenceResponse.model_validate_json(
        output_fn(predict_fn(input_fn(normal_body, content_type), model), "application/json")
    )
    intruder = InferenceResponse.model_validate_json(
        output_fn(predict_fn(input_fn(intruder_body, content_type), model), None)
    )

    # THEN one result per frame, the empty scene below the threshold with no regions, the intruder above
    assert (normal.model_version, normal.threshold, len(normal.results)) == (
        "tiny-test-1", model.threshold, n_frames,
    )
    assert all(r.score < model.threshold and r.regions == [] for r in normal.results)
    assert all(r.score > model.threshold and r.regions for r in intruder.results)


def test_intruder_region_covers_the_block(model, scenes):
    # GIVEN a frame with the dark block at rows 48..97 of 144 (a third of the way down)
    frame = scenes["intruder"][1]

    # WHEN it is scored
    response = predict_fn(Batch(frame[np.newaxis]), model)

    # THEN the best region lies around the block's rows
    best = response.results[0].regions[0]
    assert best.score == response.results[0].score
    assert best.y <= 48 / 144 + 0.1 and best.y + best.h >= 97 / 144 - 0.1


def test_camera_custom_attribute_selects_its_threshold(model, scenes):
    # GIVEN the artifact's per-camera thresholds, with a different value for cam-1
    model.thresholds = {"cam-1": 123.0}
    body = npy(scenes["normal"][:1])

    # WHEN requests name cam-1, an unknown camera, or none
    named = predict_fn(input_fn(body, "application/x-npy", Headers(**{
        "X-Amzn-SageMaker-Custom-Attributes": "trace=1, camera_id=cam-1"})), model)
    unknown = predict_fn(input_fn(body, "application/x-npy", Headers(**{
        "X-Amzn-SageMaker-Custom-Attributes": "camera_id=elsewhere"})), model)
    plain = predict_fn(input_fn(body, "application/x-npy"), model)

    # THEN cam-1 gets its own threshold, the others the global default
    assert (named.threshold, unknown.threshold, plain.threshold) == (123.0, model.threshold, model.threshold)


@pytest.mark.parametrize(
    ("body", "content_type", "error", "message"),
    [
        (b"hello", "text/plain", UnsupportedMediaType, "unsupported content type 'text/plain'"),
        (b"hello", None, UnsupportedMediaType, "unsupported content type None"),
        (b"not numpy", "application/x-npy", BadRequest, "body is not a numpy .npy array"),
        (npy(np.zeros((2, 8, 8, 3), np.float32)), "application/x-npy", BadRequest, "frames must be uint8, got float32"),
        (npy(np.zeros((2, 8, 8), np.uint8)), "application/x-npy", BadRequest, "got shape [2, 8, 8]"),
        (npy(np.zeros((0, 8, 8, 3), np.uint8)), "application/x-npy", BadRequest, "got shape [0, 8, 8, 3]"),
        (npy(np.zeros((1, 8, 8, 4), np.uint8)), "application/x-npy", BadRequest, "got shape [1, 8, 8, 4]"),
        (b"\xff\xd8\xff garbage", "image/jpeg", BadRequest, "body is not a decodable image"),
        (b"x" * (MAX_PAYLOAD_BYTES + 1), "image/jpeg", PayloadTooLarge, "over the 6291456-byte limit"),
        (npy(np.zeros((65, 2, 2, 3), np.uint8)), "application/x-npy", PayloadTooLarge, "batch of 65 frames"),
    ],
)
def test_input_fn_rejects_bad_requests_with_their_status(body, content_type, error, message):
    # GIVEN a bad request body WHEN it is decoded THEN the error carries its HTTP status and says why
    with pytest.raises(error) as raised:
        input_fn(body, content_type)
    assert message in str(raised.value)
    assert raised.value.status == {UnsupportedMediaType: 415, BadRequest: 400, PayloadTooLarge: 413}[error]


def test_batch_limit_comes_from_the_environment(monkeypatch):
    # GIVEN VIGIL_MAX_BATCH=2 (read once at import; patched here as the module constant)
    monkeypatch.setattr(env, "MAX_BATCH", 2)

    # WHEN a batch of 3 frames arrives THEN 413; a batch of 2 is accepted
    with pytest.raises(PayloadTooLarge, match="batch of 3 frames is over the limit of 2"):
        input_fn(npy(np.zeros((3, 4, 4, 3), np.uint8)), "application/x-npy")
    assert input_fn(npy(np.zeros((2, 4, 4, 3), np.uint8)), "application/x-npy").frames.shape == (2, 4, 4, 3)


def test_output_fn_refuses_other_accept_types(model, scenes):
    prediction = predict_fn(Batch(scenes["normal"][:1]), model)
    with pytest.raises(NotAcceptable) as raised:
        output_fn(prediction, "text/csv")
    assert raised.value.status == 406


@pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:FutureWarning")
def test_non_finite_scores_never_leave_the_handler(model, caplog):
    # GIVEN a model whose module returns NaN scores
    class NaNScorer(torch.nn.Module):
        def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            n = frames.shape[0]
            return torch.full((n,), math.nan), torch.zeros((n, 2, 2))

    model.module = torch.jit.script(NaNScorer())

    # WHEN a frame is scored THEN a 500 InferenceError, logged
    with pytest.raises(InferenceError, match="non-finite score") as raised:
        predict_fn(Batch(np.zeros((1, 4, 4, 3), np.uint8)), model)
    assert raised.value.status == 500
    assert "non-finite scores [nan]" in caplog.text


def test_model_fn_names_what_is_missing_or_corrupt(tiny_model_dir, tmp_path):
    # GIVEN an empty dir, and a dir whose model.pt is garbage
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_model_dir, corrupt)
    (corrupt / "model.pt").write_bytes(b"not a torchscript archive")

    # WHEN they are loaded THEN a ModelLoadError says which file / which dir
    with pytest.raises(ModelLoadError, match=f"no model.pt in model directory {empty}"):
        model_fn(empty)
    with pytest.raises(ModelLoadError, match=f"cannot load the model artifact in {corrupt}"):
        model_fn(corrupt)


def test_find_regions_boxes_components_seeded_above_threshold():
    # GIVEN a 6 x 10 error map with one strong blob and one weak blob
    error_map = np.zeros((6, 10), np.float32)
    error_map[1:3, 2:5] = 0.6  # region-level errors...
    error_map[2, 3] = 2.0  # ...around a block above the threshold
    error_map[4:6, 8:10] = 0.6  # above region_threshold only: no seed, no region

    # WHEN regions are found with threshold 1.0 and region_threshold 0.5
    regions = find_regions(error_map, threshold=1.0, region_threshold=0.5)

    # THEN exactly the seeded blob, as a normalised box
    assert regions == [Region(x=0.2, y=1 / 6, w=0.3, h=2 / 6, score=2.0)]


def test_parse_custom_attributes():
    assert parse_custom_attributes("camera_id=lobby; trace = 7,junk") == {"camera_id": "lobby", "trace": "7"}
