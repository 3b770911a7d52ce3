"""Per-camera thresholds calibrated on held-out normal footage, and the ROC AUC.

Threshold for a target false-alarm rate (default 1 per camera-hour): the worker alerts on a run of
frames over the threshold, so a false alarm is a run of held-out normal scores above it. With `hours`
of held-out footage at the model's sample rate, the camera may have `floor(rate x hours)` such runs;
the threshold is the lowest held-out score that leaves at most that many runs above it, times
`ModelConfig.threshold_margin` (1.25). Held-out footage shorter than 1 / rate hours (the usual case
for a new camera) allows none: the threshold is the highest held-out score x margin, the conservative
choice. The global `threshold` (for cameras without a calibration of their own) is the highest per-camera
threshold. The region threshold is a high quantile of held-out block scores x margin, never above the
threshold.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from training.model import ModelConfig

logger = logging.getLogger(__name__)


@dataclass
class Calibration:
    threshold: float
    thresholds: dict[str, float]
    region_threshold: float
    holdout_score_max: float


def runs_above(scores: torch.Tensor, threshold: float) -> int:
    """How many runs of consecutive scores are strictly above `threshold`."""
    above = scores > threshold
    if not len(above):
        return 0
    starts = above[1:] & ~above[:-1]
    return int(starts.sum()) + int(above[0])


def rate_threshold(scores: torch.Tensor, sample_fps: float, false_alarms_per_hour: float) -> float:
    """The lowest held-out score leaving at most `floor(rate x hours)` runs above it (module docstring)."""
    if not len(scores):
        raise ValueError("no held-out scores")
    hours = len(scores) / sample_fps / 3600.0
    allowed = math.floor(false_alarms_per_hour * hours)
    candidates = torch.unique(scores.double())  # ascending
    if allowed == 0:
        return float(candidates[-1])
    lo, hi = 0, len(candidates) - 1  # runs_above(candidates[-1]) == 0 <= allowed
    while lo < hi:  # binary search; runs is nearly monotone in the threshold
        mid = (lo + hi) // 2
        if runs_above(scores.double(), float(candidates[mid])) <= allowed:
            hi = mid
        else:
            lo = mid + 1
    return float(candidates[lo])


def calibrate(holdout_maps: dict[str, torch.Tensor], config: ModelConfig) -> Calibration:
    """Thresholds from each camera's held-out normal score maps (N x h x w, in time order)."""
    thresholds = {}
    highest = 0.0
    for camera, maps in holdout_maps.items():
        if not len(maps):
            continue
        scores = maps.flatten(1).amax(dim=1)
        base = rate_threshold(scores, config.sample_fps, config.false_alarms_per_hour)
        thresholds[camera] = _with_margin(base, config.threshold_margin)
        highest = max(highest, float(scores.max()))
        logger.info(
            "camera %s: %s held-out windows (%.2f h), threshold %.4g", camera, len(scores),
            len(scores) / config.sample_fps / 3600.0, thresholds[camera],
        )
    if not thresholds:
        raise ValueError("no held-out normal frames to calibrate the threshold on")
    threshold = max(thresholds.values())
    blocks = torch.cat([maps.flatten() for maps in holdout_maps.values()])
    region = _with_margin(float(torch.quantile(blocks.double(), config.region_quantile)), config.threshold_margin)
    return Calibration(
        threshold=threshold,
        thresholds=thresholds,
        region_threshold=min(region, threshold),
        holdout_score_max=highest,
    )


def _with_margin(value: float, margin: float) -> float:
    """`value` raised by the margin; standardised scores can be negative, so the margin scales |value|
    (and a threshold never lands below the held-out value it came from)."""
    return value + abs(value) * (margin - 1.0)


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


def min_max_per_clip(scores: list[torch.Tensor]) -> list[torch.Tensor]:
    """The standard protocol's normalisation: each clip's scores mapped to 0..1 (a flat clip to 0)."""
    normalised = []
    for clip_scores in scores:
        s = clip_scores.double()
        span = float(s.max() - s.min()) if len(s) else 0.0
        normalised.append((s - s.min()) / span if span > 0 else torch.zeros_like(s))
    return normalised
