"""Fixtures for the handler's unit tests: a tiny scene-difference model (TorchScript, calibrated on a
real H.264 clip of a still scene made with `make_video`; no training, so these tests do not depend on
`training/`), decoded frames of that scene with and without an intruder, and a temporal artifact
scripted from a small module."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from inference_artifacts import build_scene_difference_artifact

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
    """A model dir (model.tar.gz, model.pt, config.json) of `SceneDifference` on a real H.264 clip of the
    empty scene, thresholds calibrated on its frames as training does (max x 1.5), built once per session."""
    model_dir = _session_cache["root"] / "model"
    if not (model_dir / "model.tar.gz").exists():
        normal = decode(make_video("normal.mp4", n_frames=12))
        build_scene_difference_artifact(model_dir, normal, TINY_MODEL_VERSION, CAMERA_ID)
    return model_dir


@pytest.fixture
def scenes(make_video: Callable[..., Path]) -> dict[str, np.ndarray]:
    """Decoded frames of the same scene: 'normal' (empty) and 'intruder' (a block in view throughout)."""
    return {
        "normal": decode(make_video("empty.mp4", n_frames=4)),
        "intruder": decode(make_video("intruder.mp4", n_frames=4, intruder=(0, 3))),
    }


def write_artifact(model_dir: Path, module: torch.nn.Module, config: dict) -> Path:
    """A model directory holding `module` scripted as model.pt and `config` as config.json."""
    model_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.*deprecated", category=FutureWarning)
        torch.jit.script(module).save(str(model_dir / "model.pt"))
    (model_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return model_dir


class WindowMotion(torch.nn.Module):
    """A temporal model: uint8 N x T x H x W x 3 -> how much each of 4 x 4 blocks of the last frame differs
    from the window's first frame (mean absolute difference), and the largest block as the score."""

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first, last = windows[:, 0].float(), windows[:, -1].float()
        diff = (last - first).abs().mean(dim=3).unsqueeze(1)
        maps = torch.nn.functional.adaptive_avg_pool2d(diff, (4, 4)).squeeze(1)
        return maps.flatten(1).amax(dim=1), maps


TEMPORAL_CONFIG = {
    "model_version": "temporal-test-1",
    "input_size": [16, 16],
    "temporal_window": 3,
    "threshold": 20.0,
    "region_threshold": 10.0,
}


@pytest.fixture
def temporal_model_dir(tmp_path: Path) -> Path:
    """A temporal artifact (temporal_window 3) scripted from `WindowMotion`; no training needed."""
    return write_artifact(tmp_path / "temporal", WindowMotion(), TEMPORAL_CONFIG)
