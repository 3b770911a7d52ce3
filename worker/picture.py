"""Decoded pictures, converted only as far as each stage needs them.

A sampled 720p frame as full-resolution RGB costs a colour conversion and 2.7 MB that most frames
never need: the motion gate looks at a small greyscale image (160 px wide), the detector sends a
small RGB one (about twice the model's input, `worker.detector.inference_size`), and only an
alert's snapshot wants every pixel. A `Picture` keeps the decoder's frame (YUV, as PyAV returns
it) and has FFmpeg's swscale make each RGB size in one pass (colour conversion and area downscale
together); the full-resolution RGB is made on first use and kept.

Greyscale is the decoder's luma plane, read in place: area-downscaled by OpenCV (which, unlike
swscale through PyAV, lets go of the GIL) and stretched from video range (16-235) to full range.
For a large downscale only every k-th row is read, k chosen so that each output row still averages
two of them (720 -> 90 rows: 180 rows of 1280 px, 8 x 2 per output pixel): reading a freshly decoded
720p luma plane whole cost more than the rest of the gate (0.05 CPU s per 300 frames vs 0.02 s,
`make bench-worker`), and the gate blurs what it compares anyway.

Stages take an `Image`: a `Picture`, or an RGB array (tests, frames that did not come from a
decoder), which `rgb_at` and `grey_at` scale with OpenCV's area resize instead. The two resizes
agree closely but not bit for bit, so every frame of one camera takes the same path (its source's).

Setting up a swscale context costs more than the scaling itself (PyAV makes one per frame unless
asked otherwise), and a context is not thread-safe: each thread keeps one `VideoReformatter` per
output (format and size), reused from frame to frame."""

from __future__ import annotations

import threading

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

INTERPOLATION = "AREA"  # swscale's area-averaging downscale (OpenCV: INTER_AREA)
MAX_REFORMATTERS = 8  # per thread: a gate size, a send size, full size, and room for a resize
_local = threading.local()
LUMA_FIRST_FORMATS = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}
)
"""8-bit pixel formats whose first plane is the luma, one byte per pixel."""
FULL_RANGE_FORMATS = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "gray"})
FULL_RANGE = 2  # AVCOL_RANGE_JPEG: the stream says its luma spans 0-255
_VIDEO_TO_FULL_RANGE = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


class Picture:
    """One decoded video frame; RGB or greyscale at any size on demand (`rgb_at`, `grey_at`)."""

    __slots__ = ("_rgb", "frame")

    def __init__(self, frame: av.VideoFrame) -> None:
        self.frame = frame
        self._rgb: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Picture({self.frame.width}x{self.frame.height} {self.frame.format.name})"

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, 3): the shape of its full-resolution RGB image, without making it."""
        return self.frame.height, self.frame.width, 3

    def rgb(self) -> np.ndarray:
        """Full-resolution RGB, uint8, H x W x 3 (converted on the first call, then kept)."""
        if self._rgb is None:
            self._rgb = self._scaled(self.shape[:2], "rgb24")
        return self._rgb

    def rgb_at(self, size: tuple[int, int]) -> np.ndarray:
        """RGB at (height, width) `size`, straight from the decoded frame."""
        if size == self.shape[:2]:
            return self.rgb()
        return self._scaled(size, "rgb24")

    def grey_at(self, size: tuple[int, int]) -> np.ndarray:
        """Greyscale (full-range luma) at (height, width) `size`, straight from the decoded frame."""
        frame = self.frame
        if frame.format.name not in LUMA_FIRST_FORMATS:
            return self._scaled(size, "gray")
        plane = frame.planes[0]
        luma = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
        step = plane.height // (2 * size[0])
        if step > 1:
            luma = luma[step // 2 :: step]
        small = cv2.resize(luma, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        if frame.format.name in FULL_RANGE_FORMATS or frame.color_range == FULL_RANGE:
            return small
        return cv2.LUT(small, _VIDEO_TO_FULL_RANGE)

    def _scaled(self, size: tuple[int, int], pixel_format: str) -> np.ndarray:
        scaler = _reformatter(pixel_format, size)
        height, width = size
        return scaler.reformat(
            self.frame, width=width, height=height, format=pixel_format, interpolation=INTERPOLATION
        ).to_ndarray()


def _reformatter(pixel_format: str, size: tuple[int, int]) -> VideoReformatter:
    """This thread's scaler to `pixel_format` at `size` (it follows the input's size by itself)."""
    scalers: dict[tuple[str, tuple[int, int]], VideoReformatter] | None = getattr(_local, "scalers", None)
    if scalers is None:
        scalers = _local.scalers = {}
    key = (pixel_format, size)
    if key not in scalers:
        if len(scalers) >= MAX_REFORMATTERS:  # sizes came and went (resolution changes): start afresh
            scalers.clear()
        scalers[key] = VideoReformatter()
    return scalers[key]


Image = np.ndarray | Picture
"""What the motion gate and the detector take: RGB uint8 H x W x 3, or a `Picture`."""


def rgb_at(image: Image, size: tuple[int, int]) -> np.ndarray:
    """`image` as RGB at (height, width) `size`; an array already that size is returned as it is."""
    if isinstance(image, Picture):
        return image.rgb_at(size)
    if image.shape[:2] == size:
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def grey_at(image: Image, size: tuple[int, int]) -> np.ndarray:
    """`image` as greyscale at (height, width) `size`."""
    if isinstance(image, Picture):
        return image.grey_at(size)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (size[1], size[0]), interpolation=cv2.INTER_AREA)
