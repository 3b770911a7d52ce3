"""Fixtures for the handler's unit tests: a tiny model trained once per session on a real H.264 clip
of a still scene (`make_video`), and decoded frames of that scene with and without an intruder."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from training.train import get_args_parser, main

TINY_MODEL_VERSION = "tiny-test-1"
CAMERA_ID = "cam-1"


def decode(path: Path) -> np.ndarray:
    """Every frame of a video file, uint8 N x H x W x 3 RGB."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    cache: dict = {"root": tmp_path_factory.mktemp("inference-unit-model")}
    yield cache


@pytest.fixture
def tiny_model_dir(make_video: Callable[..., Path], _session_cache: dict) -> Path:
    """A model dir (model.tar.gz, model.pt, config.json) trained on a still scene, once per session."""
    model_dir = _session_cache["root"] / "model"
    if not (model_dir / "model.tar.gz").exists():
        clip = make_video("normal.mp4", n_frames=40)
        (clip.parent / "manifest.jsonl").write_text(
            json.dumps({"source-ref": clip.name, "camera_id": CAMERA_ID}) + "\n", encoding="utf-8"
        )
        argv = ["--train", str(clip.parent), "--model-dir", str(model_dir), "--model-version", TINY_MODEL_VERSION]
        main(get_args_parser().parse_args([*argv, "--epochs", "8", "--input-size", "48", "80"]))
    return model_dir


@pytest.fixture
def scenes(make_video: Callable[..., Path]) -> dict[str, np.ndarray]:
    """Decoded frames of the same scene: 'normal' (empty) and 'intruder' (a block in view throughout)."""
    return {
        "normal": decode(make_video("empty.mp4", n_frames=4)),
        "intruder": decode(make_video("intruder.mp4", n_frames=4, intruder=(0, 3))),
    }
