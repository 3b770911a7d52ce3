"""Real H.264 test footage made on the fly: a still textured 'room' and an optional intruder."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def _background(height: int, width: int, seed: int) -> np.ndarray:
    """A still, textured 'room' (smooth gradients plus fixed noise), uint8 RGB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [90 + 40 * np.sin(xx / 23.0), 110 + 30 * np.cos(yy / 17.0), 100 + 20 * np.sin((xx + yy) / 31.0)],
        axis=-1,
    )
    noise = rng.integers(-6, 7, size=(height, width, 1))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def render_scene(
    n_frames: int, *, height: int = 144, width: int = 256, intruder: tuple[int, int] | None = None, seed: int = 0
) -> list[np.ndarray]:
    """Frames of a still scene; an 'intruder' (a dark moving block) is in view for frames
    `intruder[0]..intruder[1]` inclusive."""
    background = _background(height, width, seed)
    frames = []
    for i in range(n_frames):
        frame = background.copy()
        if intruder is not None and intruder[0] <= i <= intruder[1]:
            span = max(1, intruder[1] - intruder[0])
            x = int((width - 40) * (i - intruder[0]) / span)
            y = height // 3
            frame[y : y + 50, x : x + 30] = (30, 20, 160)
        frames.append(frame)
    return frames


def render_walk(
    n_frames: int, where: dict[int, tuple[int, int]], *, height: int = 144, width: int = 256, seed: int = 0
) -> list[np.ndarray]:
    """Frames of the still scene with the intruder block (30 x 50 px) at `where[i]` = (x, y) of its top
    left corner on frame i, out of view on frames `where` does not name."""
    background = _background(height, width, seed)
    frames = []
    for i in range(n_frames):
        frame = background.copy()
        if i in where:
            x, y = where[i]
            frame[y : y + 50, x : x + 30] = (30, 20, 160)
        frames.append(frame)
    return frames


def render_tampered(
    n_frames: int, tamper: str, span: tuple[int, int], *, height: int = 144, width: int = 256, seed: int = 0
) -> list[np.ndarray]:
    """Frames of the still scene with frames `span[0]..span[1]` tampered with: `blank` (black, a covered
    lens), `blur` (defocused: a strong Gaussian blur) or `shift` (the camera turned: the view moved
    by a quarter of its width)."""
    import cv2

    wide = _background(height, width + width // 4, seed)
    for x, y, w, h, colour in ((30, 20, 40, 60, (200, 190, 170)), (150, 70, 70, 30, (60, 90, 70)),
                               (250, 30, 25, 90, (170, 120, 80))):  # furniture: a view has features
        wide[y : y + h, x : x + w] = colour
    normal, shifted = wide[:, :width], wide[:, width // 4 :]
    frames = []
    for i in range(n_frames):
        frame = normal.copy()
        if span[0] <= i <= span[1]:
            if tamper == "blank":
                frame[:] = 0
            elif tamper == "blur":
                frame = cv2.GaussianBlur(frame, (0, 0), 4.0)
            elif tamper == "shift":
                frame = np.ascontiguousarray(shifted)
            else:
                raise ValueError(f"unknown tamper {tamper!r}")
        frames.append(frame)
    return frames


def write_h264(path: Path, frames: list[np.ndarray], fps: int = 10, gop: int = 10) -> Path:
    """Encode RGB frames as H.264 (libx264) in MP4 with a keyframe every `gop` frames."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "preset": "ultrafast"}
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decoded_picture(frame: np.ndarray) -> av.VideoFrame:
    """An RGB frame as a decoder hands it over: a yuv420p `av.VideoFrame`."""
    return av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")
