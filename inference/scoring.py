"""The artifact as the endpoint runs it: OpenCV computes, from uint8 RGB windows, the model's
greyscale input (`inference.grey`) and the motion cue (`inference.motion`, as the artifact's
config.json names it); then the TorchScript module scores them. One home for that sequence: the
endpoint (`inference.inference.predict_fn`), training's calibration and `training.evaluate` all call it.
"""

from __future__ import annotations

import torch

from inference.grey import grey_frames
from inference.motion import DisMotion, MotionSpec


class Scoring:
    """The model as the endpoint runs it: from uint8 RGB windows, OpenCV computes the greyscale input
    (`inference.grey`) and the motion cue (`inference.motion`), then the scorer (an `AnomalyScorer` or
    its TorchScript export) runs `score_grey`. An artifact without a motion cue, or without
    `score_grey` (older exports), is called on the frames as they are."""

    def __init__(self, scorer: torch.nn.Module | torch.jit.ScriptModule, motion: DisMotion | None) -> None:
        self.scorer = scorer
        self.motion = motion
        self.input_size = (int(scorer.height), int(scorer.width)) if hasattr(scorer, "score_grey") else None

    def _inputs(self, frames: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if self.motion is None or frames.ndim != 5:
            return None, None
        pixels = frames.cpu().numpy()
        speed = torch.from_numpy(self.motion(pixels)).to(frames.device)
        grey = None
        if self.input_size is not None:
            grey = torch.from_numpy(grey_frames(pixels, self.input_size)).to(frames.device).float().div_(255.0)
        return grey, speed

    def __call__(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grey, speed = self._inputs(frames)
        if speed is None:
            return self.scorer(frames)
        return self.scorer(frames, speed) if grey is None else self.scorer.score_grey(grey, speed)

    def components(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grey, speed = self._inputs(frames)
        if grey is None:
            return self.scorer.components(frames, speed)
        return self.scorer.components_grey(grey, speed)


def motion_for(config: dict) -> DisMotion | None:
    """The motion cue config.json's `motion` names (None for artifacts without one)."""
    motion = config.get("motion")
    return DisMotion(MotionSpec.from_config(motion), threads=torch.get_num_threads()) if motion else None


def scoring_for(module: torch.nn.Module | torch.jit.ScriptModule, config: dict) -> Scoring:
    """`Scoring` of a loaded artifact (module and config.json)."""
    return Scoring(module, motion_for(config))
