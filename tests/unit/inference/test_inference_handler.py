"""The SageMaker handler in-process, with a tiny model trained on a real H.264 clip."""

from __future__ import annotations

import base64
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contracts.inference import MAX_PAYLOAD_BYTES, FrameResult, InferenceResponse, Region
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
    accepts_json,
    input_fn,
    model_fn,
    model_input,
    output_fn,
    parse_custom_attributes,
    predict_fn,
    select_precision,
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


def json_body(items: list[list[bytes]], **extra: object) -> bytes:
    """The application/json request: one list of encoded images per item."""
    instances = [{"frames": [base64.b64encode(image).decode() for image in item]} for item in items]
    return json.dumps({"instances": instances, **extra}).encode()


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
        ("application/json", lambda frames: json_body([[image_bytes(f, "PNG")] for f in frames]), 4),
        ("application/json", lambda frames: json_body([[image_bytes(frames[1], "JPEG")]], schema_version="1"), 1),
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


def test_camera_ids_give_each_item_its_cameras_threshold(model, scenes):
    # GIVEN per-camera thresholds and a request batching cam-1, an unknown camera and cam-1 again
    model.thresholds = {"cam-1": 123.0}
    body = npy(scenes["normal"][:3])
    attributes = {"X-Amzn-SageMaker-Custom-Attributes": "camera_ids=cam-1|elsewhere|cam-1"}

    # WHEN it is scored
    response = predict_fn(input_fn(body, "application/x-npy", Headers(**attributes)), model)

    # THEN each result carries its camera's threshold (the response's is the global one)
    assert [result.threshold for result in response.results] == [123.0, model.threshold, 123.0]
    assert response.threshold == model.threshold


def test_results_leave_out_the_item_threshold_unless_cameras_are_named_per_item(model, scenes):
    # GIVEN a request that names one camera for the whole batch
    body = npy(scenes["normal"][:1])
    data = input_fn(body, "application/x-npy", Headers(**{"X-Amzn-SageMaker-Custom-Attributes": "camera_id=c"}))

    # WHEN answered
    answer = json.loads(output_fn(predict_fn(data, model), "application/json"))

    # THEN the results have no threshold key (clients from before camera_ids still read them)
    assert [sorted(result) for result in answer["results"]] == [["regions", "score"]]


def test_input_size_is_reported_only_when_asked_for(model, scenes):
    # GIVEN the model (input_size 48 x 80) and one frame, asked with and without report_input_size=1
    body = npy(scenes["normal"][:1])
    asked = input_fn(body, "application/x-npy", Headers(**{
        "X-Amzn-SageMaker-Custom-Attributes": "camera_id=cam-1,report_input_size=1"}))
    plain = input_fn(body, "application/x-npy", Headers(**{"X-Amzn-SageMaker-Custom-Attributes": "camera_id=cam-1"}))

    # WHEN both are answered
    asked_json = json.loads(output_fn(predict_fn(asked, model), "application/json"))
    plain_json = json.loads(output_fn(predict_fn(plain, model), "application/json"))

    # THEN the asking request gets the model's (height, width); the other an answer without the key, which
    # clients from before the field (unknown keys forbidden) still read
    assert asked_json["input_size"] == [48, 80]
    assert "input_size" not in plain_json
    assert {key: value for key, value in asked_json.items() if key != "input_size"} == plain_json


def test_a_layout_the_model_cannot_score_is_a_400_naming_its_window_and_input_size(model, temporal_model_dir):
    # GIVEN a frame model (48 x 80) sent windows, and a temporal model (3 frames, 16 x 16) sent one frame
    temporal = model_fn(temporal_model_dir)
    windows = input_fn(npy(np.zeros((1, 3, 8, 8, 3), np.uint8)), "application/x-npy")
    frame = input_fn(npy(np.zeros((8, 8, 3), np.uint8)), "application/x-npy")

    # WHEN they are scored THEN each 400 names what the model takes, so a client can adapt
    with pytest.raises(BadRequest) as frame_model:
        predict_fn(windows, model)
    with pytest.raises(BadRequest) as temporal_model:
        predict_fn(frame, temporal)
    assert str(frame_model.value).endswith("(model: temporal_window=1, input_size=48x80)")
    assert str(temporal_model.value).endswith("(model: temporal_window=3, input_size=16x16)")


def test_camera_ids_must_name_one_camera_per_item(model, scenes):
    # GIVEN two items but three cameras named
    body = npy(scenes["normal"][:2])
    data = input_fn(body, "application/x-npy", Headers(**{"X-Amzn-SageMaker-Custom-Attributes": "camera_ids=a|b|c"}))

    # WHEN scored THEN it is a 400 that says why
    with pytest.raises(BadRequest, match="camera_ids names 3 cameras for 2 items"):
        predict_fn(data, model)


PNG_2x2 = image_bytes(np.zeros((2, 2, 3), np.uint8), "PNG")


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
        (npy(np.zeros((1, 1, 1, 1, 8, 8, 3), np.uint8)), "application/x-npy", BadRequest, "got shape [1, 1, 1, 1, 8"),
        (npy(np.zeros((1, 4097, 4096, 3), np.uint8)), "application/x-npy", PayloadTooLarge, "payload of 50"),
        (b"\xff\xd8\xff garbage", "image/jpeg", BadRequest, "body is not a JPEG image"),
        (PNG_2x2, "image/jpeg", BadRequest, "body is not a JPEG image"),
        (image_bytes(np.zeros((4100, 4100, 3), np.uint8), "PNG"), "image/png", PayloadTooLarge,
         "body of 4100 x 4100 pixels is over the 16777216-pixel limit"),
        (b"x" * (MAX_PAYLOAD_BYTES + 1), "image/jpeg", PayloadTooLarge, "over the 6291456-byte limit"),
        (b"{", "application/json", BadRequest, "body is not an inference request: body: Invalid JSON"),
        (b'{"instances": []}', "application/json", BadRequest, "instances: List should have at least 1 item"),
        (b'{"instances": [{"image": "x"}]}', "application/json", BadRequest, "instances.0.frames: Field required"),
        (b'{"schema_version": "2", "instances": [{"frames": ["x"]}]}', "application/json", BadRequest,
         "schema_version: Input should be '1'"),
        (b'{"instances": [{"frames": ["not base64!"]}]}', "application/json", BadRequest,
         "instances.0.frames.0 is not base64"),
        (json_body([[PNG_2x2], [b"GIF89a"]]), "application/json", BadRequest, "instances.1.frames.0 is not a JPEG or PNG image"),
        (json_body([[PNG_2x2], [PNG_2x2, PNG_2x2]]), "application/json", BadRequest,
         "every item must carry the same number of frames"),
        (json_body([[PNG_2x2], [image_bytes(np.zeros((3, 2, 3), np.uint8), "PNG")]]), "application/json", BadRequest,
         "every image of a request must have the same size, got [(2, 2), (3, 2)]"),
        (json_body([[PNG_2x2]] * 65), "application/json", PayloadTooLarge, "batch of 65 items is over the limit of 64"),
    ],
)
def test_input_fn_rejects_bad_requests_with_their_status(body, content_type, error, message):
    # GIVEN a bad request body WHEN it is decoded THEN the error carries its HTTP status and says why
    with pytest.raises(error) as raised:
        input_fn(body, content_type)
    assert message in str(raised.value)
    assert raised.value.status == {UnsupportedMediaType: 415, BadRequest: 400, PayloadTooLarge: 413}[error]


@pytest.mark.parametrize(
    ("body", "content_type", "error", "message"),
    [
        (npy(np.zeros((65, 2, 2, 3), np.uint8)), "application/x-npy", PayloadTooLarge,
         "batch of 65 items is over the limit of 64"),
        (npy(np.zeros((1, 2, 2, 2, 3), np.uint8)), "application/x-npy", BadRequest,
         "frames for a frame model must be N x H x W x 3 or H x W x 3, got shape [1, 2, 2, 2, 3]"),
        (json_body([[PNG_2x2, PNG_2x2]]), "application/json", BadRequest,
         "each item must carry 1 frame(s) for a frame model, got 2"),
    ],
)
def test_predict_fn_rejects_layouts_that_do_not_fit_a_frame_model(model, body, content_type, error, message):
    # GIVEN a well-formed body whose layout the frame model cannot score
    data = input_fn(body, content_type)

    # WHEN it is scored THEN a client error with its status, before any forward pass
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        predict_fn(data, model)


def test_batch_limit_comes_from_the_environment(monkeypatch):
    # GIVEN VIGIL_MAX_BATCH=2 (read once at import; patched here as the module constant)
    monkeypatch.setattr(env, "MAX_BATCH", 2)

    # WHEN a batch of 3 frames arrives THEN 413 (JSON at once, npy once the layout is known); 2 are accepted
    with pytest.raises(PayloadTooLarge, match="batch of 3 items is over the limit of 2"):
        input_fn(json_body([[PNG_2x2]] * 3), "application/json")
    with pytest.raises(PayloadTooLarge, match="batch of 3 items is over the limit of 2"):
        model_input(input_fn(npy(np.zeros((3, 4, 4, 3), np.uint8)), "application/x-npy"), temporal_window=1)
    assert model_input(input_fn(npy(np.zeros((2, 4, 4, 3), np.uint8)), "application/x-npy"), 1).shape == (2, 4, 4, 3)


@pytest.mark.parametrize(
    ("accept", "acceptable"),
    [
        (None, True),
        ("", True),
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("*/*", True),
        ("application/*", True),
        ("text/html, application/json;q=0.5", True),
        ("text/html,*/*;q=0.1", True),
        ("text/csv", False),
        ("application/json;q=0", False),
        ("text/html, application/xml", False),
        ("application/json;q=oops", False),
    ],
)
def test_accepts_json(accept, acceptable):
    assert accepts_json(accept) is acceptable


def test_output_fn_refuses_other_accept_types(model, scenes):
    prediction = predict_fn(Batch(scenes["normal"][:1]), model)
    with pytest.raises(NotAcceptable) as raised:
        output_fn(prediction, "text/csv")
    assert (raised.value.status, str(raised.value)) == (406, "cannot answer in 'text/csv'; the response is application/json")


@pytest.mark.parametrize(
    ("requested", "cuda", "expected"),
    [
        ("auto", False, (torch.device("cpu"), torch.float32)),
        ("float16", False, (torch.device("cpu"), torch.float32)),
        ("bfloat16", False, (torch.device("cpu"), torch.float32)),
        ("float32", False, (torch.device("cpu"), torch.float32)),
        ("auto", True, (torch.device("cuda"), torch.float16)),
        ("float32", True, (torch.device("cuda"), torch.float32)),
        ("bfloat16", True, (torch.device("cuda"), torch.bfloat16)),
    ],
)
def test_select_precision_uses_half_on_a_gpu_only(requested, cuda, expected):
    assert select_precision(requested, cuda_available=cuda) == expected


def test_select_precision_names_the_choices():
    with pytest.raises(ValueError, match="precision must be one of auto, float32, float16, bfloat16; got 'fp8'"):
        select_precision("fp8", cuda_available=True)


def test_model_runs_on_the_cpu_in_float32_here(model):
    # GIVEN this machine (no GPU in CI) WHEN the model is loaded THEN it runs on the CPU in float32
    assert (model.device, model.dtype, next(model.module.buffers()).device) == (
        torch.device("cpu"), torch.float32, torch.device("cpu"),
    )


def test_half_precision_path_scores_like_float32(model, scenes):
    # GIVEN the same frames scored in float32 and under bfloat16 autocast (the CPU's half type; on a GPU
    # the same code path runs float16)
    frames = Batch(np.concatenate([scenes["normal"][:1], scenes["intruder"][1:2]]))
    full = predict_fn(frames, model)
    model.dtype = torch.bfloat16

    # WHEN scored at reduced precision
    half = predict_fn(frames, model)

    # THEN the scores are float32 numbers close to the float32 ones, and still on the right side of the threshold
    assert [r.score for r in half.results] == pytest.approx([r.score for r in full.results], rel=0.1)
    assert [r.score > model.threshold for r in half.results] == [False, True]


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


# --- temporal models (config.json "temporal_window": T) ---------------------------------------------


def moving_window(t: int = 3, size: int = 16, moved: bool = True) -> np.ndarray:
    """T x size x size x 3 frames of a grey scene; with `moved`, the last frame has a white 4 x 4 block at
    rows 4..7, columns 8..11."""
    window = np.full((t, size, size, 3), 100, np.uint8)
    if moved:
        window[-1, 4:8, 8:12] = 255
    return window


def test_temporal_model_scores_windows_in_every_layout(temporal_model_dir):
    # GIVEN a temporal artifact (temporal_window 3) and windows with and without a change
    model = model_fn(temporal_model_dir)
    still, moved = moving_window(moved=False), moving_window()

    # WHEN two windows are sent as N x T x H x W x 3, one as T x H x W x 3, and two as JSON (3 PNGs each)
    batch = predict_fn(input_fn(npy(np.stack([still, moved])), "application/x-npy"), model)
    single = predict_fn(input_fn(npy(moved), "application/x-npy"), model)
    as_json = predict_fn(input_fn(json_body([[image_bytes(f, "PNG") for f in w] for w in (still, moved)]),
                                  "application/json"), model)

    # THEN one result per window, scored on its last frame, the change boxed where it is
    moved_result = FrameResult(score=155.0, regions=[Region(x=0.5, y=0.25, w=0.25, h=0.25, score=155.0)])
    expected = InferenceResponse(
        model_version="temporal-test-1", threshold=20.0, temporal_window=3,
        results=[FrameResult(score=0.0), moved_result],
    )
    assert batch == expected
    assert as_json == expected
    assert single == expected.model_copy(update={"results": [moved_result]})


@pytest.mark.parametrize(
    ("body", "content_type", "error", "message"),
    [
        (npy(moving_window(t=2)), "application/x-npy", BadRequest,
         "frames for a temporal model (temporal_window=3) must be N x 3 x H x W x 3 or 3 x H x W x 3, got shape [2, 16, 16, 3] (model: temporal_window=3, input_size=16x16)"),
        (npy(np.stack([moving_window(t=4)])), "application/x-npy", BadRequest, "got shape [1, 4, 16, 16, 3]"),
        (npy(moving_window()[0]), "application/x-npy", BadRequest, "got shape [16, 16, 3]"),
        (json_body([[PNG_2x2]]), "application/json", BadRequest,
         "each item must carry 3 frame(s) for a temporal model (temporal_window=3), got 1 (model: temporal_window=3, input_size=16x16)"),
        (PNG_2x2, "image/png", UnsupportedMediaType,
         ("image/png carries one frame but a temporal model (temporal_window=3) scores windows of 3 frames; "
          "send application/x-npy or application/json")),
        (npy(np.zeros((65, 3, 4, 4, 3), np.uint8)), "application/x-npy", PayloadTooLarge,
         "batch of 65 items is over the limit of 64"),
    ],
)
def test_temporal_model_refuses_what_is_not_a_window(temporal_model_dir, body, content_type, error, message):
    # GIVEN a temporal model and a body that does not carry windows of 3 frames
    model = model_fn(temporal_model_dir)

    # WHEN it is scored THEN a client error that names the window the model needs
    with pytest.raises(error) as raised:
        predict_fn(input_fn(body, content_type), model)
    assert str(raised.value) == message if "temporal" in message else message in str(raised.value)


def test_frame_model_reports_temporal_window_1(model, scenes):
    response = InferenceResponse.model_validate_json(output_fn(predict_fn(Batch(scenes["normal"][:1]), model), None))
    assert response.temporal_window == 1


def test_model_fn_refuses_a_bad_temporal_window(temporal_model_dir):
    config = json.loads((temporal_model_dir / "config.json").read_text())
    (temporal_model_dir / "config.json").write_text(json.dumps({**config, "temporal_window": -2}))
    with pytest.raises(ModelLoadError, match="temporal_window must be >= 1, got -2"):
        model_fn(temporal_model_dir)


def test_model_fn_refuses_a_module_that_does_not_fit_its_window(temporal_model_dir, tiny_model_dir, tmp_path):
    # GIVEN a frame model's module declared as temporal in its config
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_model_dir, mixed)
    config = json.loads((mixed / "config.json").read_text())
    (mixed / "config.json").write_text(json.dumps({**config, "temporal_window": 3}))

    # WHEN it is loaded THEN the warm-up says it fails, at load time rather than on the first request
    with pytest.raises(ModelLoadError, match=f"model in {mixed} fails on a warm-up frame"):
        model_fn(mixed)
