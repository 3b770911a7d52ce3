"""Temporal windows over a clip, and scoring every frame of a clip with a model.

The window of frame i is frames i - (T - 1) * s, ..., i - s, i (oldest first), where s is the clip's
stride (`ClipFrames.stride`: frames ~1 / sample_fps seconds apart, the rate the worker samples at).
Near the start of a clip, indices before 0 repeat frame 0, exactly as the worker repeats the oldest
frame it has while its history is shorter than the window; so every frame gets a score.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

logger = logging.getLogger(__name__)

SCORE_BATCH = 64


def window_indices(n_frames: int, window: int, stride: int) -> torch.Tensor:
    """n_frames x window frame indices (long), oldest first, clamped at 0."""
    offsets = torch.arange(window - 1, -1, -1) * stride
    return (torch.arange(n_frames).unsqueeze(1) - offsets.unsqueeze(0)).clamp(min=0)


def model_input(frames: torch.Tensor, indices: torch.Tensor, window: int) -> torch.Tensor:
    """uint8 clip frames N x 3 x h x w and window indices -> what the scorer takes: uint8 n x T x h x w x 3
    (n x h x w x 3 when `window` is 1)."""
    items = frames[indices].permute(0, 1, 3, 4, 2)
    return items[:, 0] if window == 1 else items


@torch.inference_mode()
def score_clip(
    scorer: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    frames: torch.Tensor,
    window: int,
    stride: int,
    batch: int = SCORE_BATCH,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores[N], maps[N, h, w]) for every frame of a clip (uint8 N x 3 x h x w), in order."""
    indices = window_indices(len(frames), window, stride)
    scores, maps = [], []
    for start in range(0, len(indices), batch):
        s, m = scorer(model_input(frames, indices[start : start + batch], window))
        scores.append(s.float().cpu())
        maps.append(m.float().cpu())
    return torch.cat(scores), torch.cat(maps)
