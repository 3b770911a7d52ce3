"""Decoded pictures: each stage's small image made straight from the decoder's YUV frame (swscale),
matching what OpenCV makes from the full-resolution RGB; full-resolution RGB made once, on demand."""

from __future__ import annotations

import threading

import av
import cv2
import numpy as np
import pytest
from synthetic_video import decoded_picture, render_scene

from worker.config import MotionConfig
from worker.motion import GateReason, MotionGate
from worker.picture import Picture, grey_at, rgb_at


def yuv_picture(rgb: np.ndarray) -> Picture:
    return Picture(decoded_picture(rgb))


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def test_shape_is_known_without_converting_and_full_rgb_is_made_once():
    # GIVEN a decoded 256 x 144 picture
    picture = yuv_picture(render_scene(1)[0])

    # WHEN its shape and its full-resolution RGB are asked for, twice
    shape = picture.shape
    first, second = picture.rgb(), picture.rgb()

    # THEN the shape is the RGB image's, the RGB is the decoder's own conversion, made once
    assert shape == first.shape == (144, 256, 3)
    assert first.dtype == np.uint8
    assert second is first
    assert np.array_equal(first, picture.frame.to_ndarray(format="rgb24"))
    assert rgb_at(picture, (144, 256)) is first


def test_small_rgb_and_grey_match_opencv_from_the_full_rgb():
    # GIVEN a decoded picture and its full-resolution RGB
    picture = yuv_picture(render_scene(31, intruder=(0, 30))[10])
    full = picture.frame.to_ndarray(format="rgb24")

    # WHEN the detector's and the gate's sizes are made from the picture and from the RGB array
    small_rgb, small_rgb_cv = rgb_at(picture, (72, 128)), rgb_at(full, (72, 128))
    small_grey, small_grey_cv = grey_at(picture, (36, 64)), grey_at(full, (36, 64))

    # THEN the shapes are the ones asked for, and the pixels agree (full-range grey, area downscale)
    assert (small_rgb.shape, small_grey.shape) == ((72, 128, 3), (36, 64))
    assert np.array_equal(small_rgb_cv, cv2.resize(full, (128, 72), interpolation=cv2.INTER_AREA))
    assert np.array_equal(
        small_grey_cv, cv2.resize(cv2.cvtColor(full, cv2.COLOR_RGB2GRAY), (64, 36), interpolation=cv2.INTER_AREA)
    )
    assert mean_abs_diff(small_rgb, small_rgb_cv) < 3
    assert mean_abs_diff(small_grey, small_grey_cv) < 2
    assert abs(float(small_grey.mean()) - float(small_grey_cv.mean())) < 2


def test_an_array_already_at_the_size_is_sent_as_it_is():
    image = render_scene(1)[0]
    assert rgb_at(image, (144, 256)) is image


def test_one_thread_follows_a_resolution_change_and_threads_do_not_share_a_scaler():
    # GIVEN pictures of two resolutions
    small, large = yuv_picture(render_scene(1)[0]), yuv_picture(render_scene(1, height=288, width=512)[0])
    expected = {
        "small": cv2.resize(small.frame.to_ndarray(format="rgb24"), (64, 36), interpolation=cv2.INTER_AREA),
        "large": cv2.resize(large.frame.to_ndarray(format="rgb24"), (64, 36), interpolation=cv2.INTER_AREA),
    }
    errors: list[float] = []

    def convert() -> None:
        for _ in range(20):
            for name, picture in (("small", small), ("large", large)):
                errors.append(mean_abs_diff(rgb_at(picture, (36, 64)), expected[name]))

    # WHEN four threads make the same output size from both, alternating
    threads = [threading.Thread(target=convert) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN every image is right
    assert len(errors) == 160
    assert max(errors) < 3


@pytest.mark.parametrize("as_picture", [False, True], ids=["rgb-array", "picture"])
def test_motion_gate_decides_the_same_on_pictures_and_arrays(as_picture: bool):
    # GIVEN a still scene, then an intruder, as RGB arrays or as decoded pictures
    frames = render_scene(31, intruder=(20, 30))
    images = [yuv_picture(frame) if as_picture else frame for frame in frames]
    gate = MotionGate(MotionConfig(heartbeat_s=100.0))

    # WHEN frames 0, 5, 10 (still) and 25 (intruder) go through the gate
    reasons = [gate.check(images[i], i * 0.2).reason for i in (0, 5, 10, 25)]

    # THEN the first is sent, the still ones are held back, the intruder is motion
    assert reasons == [GateReason.FIRST, GateReason.STILL, GateReason.STILL, GateReason.MOTION]


@pytest.mark.parametrize("pixel_format", ["yuv420p", "yuvj420p", "nv12", "rgb24"])
def test_grey_agrees_with_swscale_whatever_the_pixel_format_and_range(pixel_format: str):
    # GIVEN a 1280 x 720 frame (the gate reads every 4th row of its luma) in video or full range,
    # or in a format whose first plane is not luma (swscale then makes the grey)
    rgb = cv2.resize(render_scene(1)[0], (1280, 720), interpolation=cv2.INTER_LINEAR)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pixel_format)
    picture = Picture(frame)

    # WHEN the gate's 160 x 90 grey is made
    grey = grey_at(picture, (90, 160))

    # THEN it is full-range grey, as swscale makes it from the whole frame, within a grey level
    reference = frame.reformat(width=160, height=90, format="gray", interpolation="AREA").to_ndarray()
    assert grey.shape == (90, 160)
    assert mean_abs_diff(grey, reference) < 1.5
    assert abs(float(grey.mean()) - float(reference.mean())) < 1
