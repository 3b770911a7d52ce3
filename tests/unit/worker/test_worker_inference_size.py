"""The size frames are sent at: no larger than the model needs (its `input_size`, learnt from the
endpoint's answers and refusals), never upscaled, `inference_max_side` as an upper bound, and an item
that can never fit the payload limit refused with its sizes."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_video import decoded_picture

from contracts.inference import MAX_PAYLOAD_BYTES, FrameResult, InferenceResponse
from worker.batching import BatchingDetector
from worker.detector import (
    NPY_HEADER_BYTES,
    DetectorError,
    TemporalDetector,
    WindowMismatch,
    _chunks,
    encode_npy,
    inference_size,
)
from worker.picture import Picture

MODEL_INPUT = (64, 96)  # (height, width) the model resizes every frame to


@pytest.mark.parametrize(
    ("frame", "input_size", "max_side", "expected"),
    [
        # 16:9 cameras: the height is the binding side (>= 128), the aspect ratio is kept
        ((720, 1280), MODEL_INPUT, 960, (128, 228)),
        ((1080, 1920), MODEL_INPUT, 960, (128, 228)),
        ((540, 960), MODEL_INPUT, None, (128, 228)),
        # 4:3 and portrait: the width binds where the frame is relatively narrow
        ((480, 640), MODEL_INPUT, 960, (144, 192)),
        ((1280, 720), MODEL_INPUT, 960, (341, 192)),
        # never upscaled: a frame already under 2x the model's size goes as it is
        ((120, 160), MODEL_INPUT, 960, (120, 160)),
        ((8, 8), (8, 8), None, (8, 8)),
        # inference_max_side stays an upper bound (an override below what the model would like)
        ((720, 1280), MODEL_INPUT, 160, (90, 160)),
        # the model's size not known yet (first request, older endpoint): max_side alone, as before
        ((720, 1280), None, 960, (540, 960)),
        ((720, 1280), None, None, (720, 1280)),
    ],
)
def test_inference_size(frame, input_size, max_side, expected):
    # GIVEN a decoded frame, the model's input size and inference_max_side
    # WHEN the size it is sent at is chosen
    size = inference_size(*frame, input_size=input_size, max_side=max_side)

    # THEN it is the expected one, and never under twice the model's size unless the frame itself is
    assert size == expected
    if input_size is not None and max_side is None:
        assert all(side >= min(2 * need, have) for side, need, have in zip(size, input_size, frame, strict=True))


@pytest.mark.parametrize(("frame", "window"), [((720, 1280), 4), ((720, 1280), 6), ((1080, 1920), 4), ((1080, 1920), 6)])
def test_a_window_at_the_models_size_fits_the_payload_limit_many_times_over(frame, window):
    # GIVEN a window of T decoded frames at the size sent for a 64 x 96 model
    height, width = inference_size(*frame, input_size=MODEL_INPUT, max_side=960)
    body = encode_npy([np.zeros((window, height, width, 3), np.uint8)])

    # THEN one item is a small fraction of SageMaker's 6 MB (8 items of 6 frames: 4.2 MB)
    assert len(body) < MAX_PAYLOAD_BYTES / 8


def test_an_item_that_can_never_fit_is_refused_with_its_sizes():
    # GIVEN a window of 6 frames at 960 x 540 (what the worker sent before it knew the model's size)
    item = np.zeros((6, 540, 960, 3), np.uint8)

    # WHEN it is cut into requests
    with pytest.raises(DetectorError) as refused:
        _chunks([item], 6, MODEL_INPUT)

    # THEN the error names the item, its bytes, the limit, the model's size and the longest side that fits
    assert str(refused.value) == (
        f"one item of 6 frame(s) of 960x540 is {item.nbytes + NPY_HEADER_BYTES} bytes, over the endpoint's "
        f"{MAX_PAYLOAD_BYTES}-byte payload limit; the model's input_size (HxW) is 64x96; frames of this shape fit "
        "with a longer side of at most 788 (inference_max_side)"
    )
    # AND that longest side does fit
    fits = np.zeros((6, *inference_size(540, 960, max_side=788), 3), np.uint8)
    assert len(encode_npy([fits])) <= MAX_PAYLOAD_BYTES


class ScriptedDetector(TemporalDetector):
    """A camera's detector whose endpoint is a script: each call records the items' shape, and is
    answered like a temporal model of `model_window` frames of `model_size` (named when `names_size`);
    a request of another window is refused with a mismatch, as the real endpoint's 400 reads."""

    def __init__(self, model_window: int, model_size: tuple[int, int], *, names_size: bool = True, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__("vigil-detector", camera_id="cam-1", **kwargs)
        self.model_window, self.model_size, self.names_size = model_window, model_size, names_size
        self.shapes: list[tuple[int, ...]] = []
        self.windows: list[list[int]] = []  # each window item's frames, by their first pixel

    def _invoke_items(self, items: list[np.ndarray], window: int) -> InferenceResponse:
        self.shapes.append(np.stack(items).shape)
        self.windows += [[int(frame[0, 0, 0]) for frame in item] for item in items if item.ndim == 4]
        named = self.model_size if self.names_size else None
        if window != self.model_window:
            raise WindowMismatch(self.model_window, named)
        return InferenceResponse(
            model_version="scripted", temporal_window=window, input_size=named,
            results=[FrameResult(score=float(item[-1].mean())) for item in items],
        )


def frames_720p(count: int) -> list[np.ndarray]:
    return [np.full((720, 1280, 3), 10 * i, np.uint8) for i in range(count)]


def test_a_temporal_model_is_sent_windows_at_its_size_from_the_refusal_on():
    # GIVEN a camera of 1280 x 720 frames, inference_max_side 960, and a model of 6 frames of 64 x 96
    detector = ScriptedDetector(6, MODEL_INPUT, max_side=960)
    frames = frames_720p(4)

    # WHEN the reader observes three frames and the analyser scores the fourth, then one more
    for image in frames[:3]:
        detector.observe(image, scored=False)
    detector.observe(frames[3], scored=True)
    first = detector.detect([frames[3]])
    detector.observe(frames[0], scored=True)
    second = detector.detect([frames[0]])

    # THEN the discovery frame went at max_side and was refused; the model's window and size were learnt
    # from the refusal, and every window since holds 6 frames at 228 x 128, the observed history rescaled
    assert detector.shapes == [(1, 540, 960, 3), (1, 6, 128, 228, 3), (1, 6, 128, 228, 3)]
    assert (detector.temporal_window, detector.input_size) == (6, MODEL_INPUT)
    assert [r.score for r in (*first.results, *second.results)] == [30.0, 0.0]
    # AND only frames whose decoded image was still held carried over (rescaled from it, not from their
    # 960 x 540 copy): the first window pads the frame scored; the next one holds it
    assert detector.windows == [[30] * 6, [30] * 5 + [0]]


def test_decoded_pictures_are_sent_at_the_models_size_and_rescaled_from_the_picture():
    # GIVEN the camera above, its 1280 x 720 frames as the decoder hands them over (not converted to RGB)
    detector = ScriptedDetector(6, MODEL_INPUT, max_side=960)
    pictures = [Picture(decoded_picture(frame)) for frame in frames_720p(4)]

    # WHEN the reader observes them and the analyser scores the last, then the first again
    for picture in pictures[:3]:
        detector.observe(picture, scored=False)
    detector.observe(pictures[3], scored=True)
    detector.detect([pictures[3]])
    detector.observe(pictures[0], scored=True)
    detector.detect([pictures[0]])

    # THEN the windows are the arrays' (same sizes, same frames: colours come back through YUV within a few levels),
    # and no full-resolution RGB was made for any of them
    assert detector.shapes == [(1, 540, 960, 3), (1, 6, 128, 228, 3), (1, 6, 128, 228, 3)]
    assert [[round(v / 10) for v in window] for window in detector.windows] == [[3] * 6, [3] * 5 + [0]]
    assert all(picture._rgb is None for picture in pictures)


def test_a_window_longer_than_half_the_history_pads_with_the_oldest_frame():
    # GIVEN a known 6-frame model and a camera that has sampled 3 frames before the one scored
    detector = ScriptedDetector(6, MODEL_INPUT, temporal_window=6, input_size=MODEL_INPUT)
    frames = [np.full((8, 8, 3), value, np.uint8) for value in (10, 20, 30, 40)]
    for image in frames:
        detector.observe(image, scored=image is frames[-1])

    # WHEN the last is scored
    detector.detect([frames[-1]])

    # THEN its window holds every frame before it, the start padded with the oldest (not cut to the last two)
    assert detector.windows == [[10, 10, 10, 20, 30, 40]]


def test_a_frame_model_names_its_size_in_its_first_answer_and_later_frames_shrink():
    # GIVEN a frame model (64 x 96) not known yet
    detector = ScriptedDetector(1, MODEL_INPUT, max_side=960)

    # WHEN two frames are scored one after the other
    for image in frames_720p(2):
        detector.detect([image])

    # THEN the first went at max_side; its answer named the size, and the second went at 228 x 128
    assert detector.shapes == [(1, 540, 960, 3), (1, 128, 228, 3)]


def test_an_endpoint_that_does_not_name_its_size_gets_a_clear_error_not_a_loop():
    # GIVEN an older endpoint (no input_size anywhere) with a 6-frame model, and 960 as the only bound
    detector = ScriptedDetector(6, MODEL_INPUT, names_size=False, max_side=960)

    # WHEN a 720p frame is scored THEN the refusal teaches the window, and the window that can never
    # fit is refused before any call, saying so
    with pytest.raises(DetectorError, match=r"one item of 6 frame\(s\) of 960x540 .* input_size \(HxW\) is not known"):
        detector.detect(frames_720p(1))
    assert detector.shapes == [(1, 540, 960, 3)]


def test_cameras_that_join_a_fleet_later_start_at_the_models_size():
    # GIVEN a dispatcher whose endpoint already named a 6-frame, 64 x 96 model
    def send(items, window, attributes):  # type: ignore[no-untyped-def]
        return InferenceResponse(model_version="m", temporal_window=6, input_size=MODEL_INPUT,
                                 results=[FrameResult(score=0.0) for _ in items])

    batcher = BatchingDetector(send, endpoint_name="fake", max_batch=1, max_wait_s=0.0)
    batcher.start()
    batcher.submit("cam-0", [np.zeros((6, 8, 8, 3), np.uint8)], window=6)
    batcher.stop()

    # WHEN a camera joins
    detector = batcher.for_camera("cam-9", max_side=960)

    # THEN it knows the window and the size before its first call
    assert (detector.temporal_window, detector.input_size) == (6, MODEL_INPUT)
    assert detector.scaled(frames_720p(1)[0]).shape == (128, 228, 3)
