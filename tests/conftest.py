"""Fixtures shared by every tier: a moto server on 127.0.0.1 and real H.264 video made on the fly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from worker.local.stack import LocalStack

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_VIDEO = REPO_ROOT / "worker" / "local" / "sample" / "one-by-one-person-detection.mp4"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def local_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """A fresh moto server with the Vigil resources; this process's boto3 points at it."""
    with LocalStack() as stack:
        for key, value in stack.env().items():
            monkeypatch.setenv(key, value)
        yield stack


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


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    """`make_video(name, n_frames, intruder=(a, b), fps=10)` -> path of a real H.264 MP4."""

    def _make(name: str = "scene.mp4", n_frames: int = 60, fps: int = 10, **scene: object) -> Path:
        return write_h264(tmp_path / name, render_scene(n_frames, **scene), fps=fps)  # type: ignore[arg-type]

    return _make


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach AWS: fake credentials unless a test points boto3 at a local server."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
