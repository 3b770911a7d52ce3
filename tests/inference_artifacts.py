"""A tiny scene-difference model with the inference artifact's contract, built in tests (no training,
so the inference tests do not depend on `training/`); shared by the unit and functional suites."""

from __future__ import annotations

import json
import tarfile
import warnings
from pathlib import Path

import numpy as np
import torch


class SceneDifference(torch.nn.Module):
    """A frame model small enough to build in a test, with the artifact's contract: uint8 N x H x W x 3 RGB
    of any size -> (scores[N], maps[N, 6, 10]). Frames are resized to 48 x 80; a block's error is the mean
    squared difference (0..1 scale) from the empty scene over its 8 x 8 pixels; the score is the largest."""

    def __init__(self, background: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("background", self.resize(background))

    @staticmethod
    def resize(frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float().div(255.0)
        return torch.nn.functional.interpolate(x, size=(48, 80), mode="bilinear", align_corners=False, antialias=True)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        error = (self.resize(frames) - self.background).pow(2).mean(dim=1, keepdim=True)
        maps = torch.nn.functional.avg_pool2d(error, kernel_size=8, stride=8).squeeze(1)
        return maps.flatten(1).amax(dim=1), maps


def build_scene_difference_artifact(model_dir: Path, normal: np.ndarray, model_version: str, camera_id: str) -> Path:
    """model.tar.gz, model.pt and config.json of `SceneDifference` on `normal` frames (uint8 N x H x W x 3),
    thresholds calibrated on them as training does (max x 1.5)."""
    frames = torch.from_numpy(normal)
    module = SceneDifference(frames[:1])
    with torch.inference_mode():
        scores, _maps = module(frames)
    threshold = max(float(scores.max()) * 1.5, 1e-4)
    config = {"model_version": model_version, "input_size": [48, 80], "threshold": threshold,
              "thresholds": {camera_id: threshold * 1.1}, "region_threshold": threshold / 2}
    model_dir.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.*deprecated", category=FutureWarning)
        torch.jit.script(module).save(str(model_dir / "model.pt"))
    (model_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with tarfile.open(model_dir / "model.tar.gz", "w:gz") as tar:
        for name in ("model.pt", "config.json"):
            tar.add(model_dir / name, arcname=name)
    return model_dir


class FirstToLastChange(torch.nn.Module):
    """A temporal model (uint8 N x T x H x W x 3): score = mean |last frame - first frame|."""

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        diff = (windows[:, -1].float() - windows[:, 0].float()).abs().mean(dim=3)
        return diff.flatten(1).mean(dim=1), diff


def write_first_to_last_artifact(model_dir: Path, window: int, **config: object) -> Path:
    """model.pt and config.json (an 8 x 8 input, `temporal_window` `window`, and `config`) of
    `FirstToLastChange` in `model_dir`, the folder layout `inference.serve --model` takes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.*deprecated", category=FutureWarning)
        torch.jit.script(FirstToLastChange()).save(str(model_dir / "model.pt"))
    (model_dir / "config.json").write_text(json.dumps({"input_size": [8, 8], "temporal_window": window, **config}))
    return model_dir
