"""Scoring frames with the trained autoencoder, and thresholds calibrated on held-out normal frames.

Choice: a camera's threshold is the highest score of its held-out normal frames times a margin
(`ModelConfig.threshold_margin`, 1.25): every held-out normal frame is below it with 20% to spare,
and compression noise or small lighting drift stays under it, while a person in view scores several
times higher. The global `threshold` (used for cameras with no calibration of their own) is the
highest of the per-camera thresholds. The region threshold is a high quantile of the held-out
normal *block* errors times the same margin, never above the global threshold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from training.model import AutoEncoder, ModelConfig, error_maps

logger = logging.getLogger(__name__)

_SCORE_BATCH = 64


@dataclass
class Calibration:
    threshold: float
    thresholds: dict[str, float]
    region_threshold: float
    holdout_score_max: float


@torch.inference_mode()
def score_frames(
    autoencoder: AutoEncoder, frames: torch.Tensor, config: ModelConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 N x 3 x h x w model-size frames -> (scores[N], error maps[N, h/b, w/b]) on the CPU."""
    autoencoder.eval()
    scores, maps = [], []
    for start in range(0, len(frames), _SCORE_BATCH):
        x = frames[start : start + _SCORE_BATCH].to(device).float().div(255.0)
        batch_maps = error_maps(x, autoencoder(x), config.block).cpu()
        maps.append(batch_maps)
        scores.append(batch_maps.flatten(1).amax(dim=1))
    if not scores:
        return torch.empty(0), torch.empty((0, 1, 1))
    return torch.cat(scores), torch.cat(maps)


def calibrate(holdout_maps: dict[str, torch.Tensor], config: ModelConfig) -> Calibration:
    """Thresholds from each camera's held-out normal error maps (see the module docstring)."""
    thresholds = {
        camera: float(maps.flatten(1).amax(dim=1).max()) * config.threshold_margin
        for camera, maps in holdout_maps.items()
        if len(maps)
    }
    if not thresholds:
        raise ValueError("no held-out normal frames to calibrate the threshold on")
    threshold = max(thresholds.values())
    blocks = torch.cat([maps.flatten() for maps in holdout_maps.values()])
    region = float(torch.quantile(blocks, config.region_quantile)) * config.threshold_margin
    return Calibration(
        threshold=threshold,
        thresholds=thresholds,
        region_threshold=min(region, threshold),
        holdout_score_max=threshold / config.threshold_margin,
    )


def roc_auc(scores: torch.Tensor, positive: torch.Tensor) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks); None unless both classes occur."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = scores.double().argsort()
    ranks = torch.empty(len(scores), dtype=torch.float64)
    _, counts = torch.unique_consecutive(scores.double()[order], return_counts=True)
    ends = counts.cumsum(0)
    mid = (ends - counts + 1 + ends).double() / 2.0
    ranks[order] = torch.repeat_interleave(mid, counts)
    u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)
