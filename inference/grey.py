"""Frames to the model's greyscale input, with OpenCV: the one conversion the endpoint, training and
evaluation share (`inference` never imports `training`; `training` imports this).

BT.601 luma (`cv2.COLOR_RGB2GRAY`), then an area resize (`cv2.INTER_AREA`: each output pixel the mean
of the input pixels it covers, the antialiasing a 2x downscale needs) to (height, width). In uint8, on
the SIMD paths of OpenCV: for a window of 7 frames of 128 x 192, about 0.1 ms, where the same in torch
float ops (to float, luma, antialiased bilinear) cost ~5 ms and was a third of the scoring time.
"""

from __future__ import annotations

import cv2
import numpy as np


def grey_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 H x W x 3 RGB -> uint8 height x width luma."""
    grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    height, width = size
    if grey.shape != (height, width):
        grey = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)
    return grey


def grey_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 ... x H x W x 3 RGB (any leading axes) -> uint8 ... x height x width luma."""
    if frames.shape[-1] != 3:
        raise ValueError(f"frames must end in 3 RGB channels, got shape {list(frames.shape)}")
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = np.empty((len(flat), *size), dtype=np.uint8)
    for i, frame in enumerate(flat):
        out[i] = grey_frame(frame, size)
    return out.reshape(*lead, *size)
