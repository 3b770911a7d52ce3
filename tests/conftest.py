"""Fixtures shared by every tier: a moto server on 127.0.0.1 and real H.264 video made on the fly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from synthetic_video import render_scene, write_h264

from local.stack import LocalStack

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def local_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """A fresh moto server with the Vigil resources; this process's boto3 points at it."""
    with LocalStack() as stack:
        for key, value in stack.env().items():
            monkeypatch.setenv(key, value)
        yield stack


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
