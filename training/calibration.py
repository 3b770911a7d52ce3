"""Per-camera thresholds calibrated on held-out normal footage, and the ROC AUC.

Threshold for a target false-alarm rate (`ModelConfig.false_alarms_per_hour`, default 1 per
camera-hour): the worker alerts on a run of frames over the threshold, so a false alarm is a run of
normal scores above it. A new camera has minutes of held-out footage, far less than the hour the rate is
counted over, so the rate cannot be read off the held-out scores: it is extrapolated from a generalized
Pareto fit to the tail of the held-out frame scores (`training.tail`: peaks over the
`tail_quantile`, declustered into runs). The threshold is never below the highest held-out score (a
score seen on normal footage is not an incident). With fewer than `training.tail.MIN_PEAKS` runs above
the tail's level (a few seconds of footage, as in the demo) there is no tail to extrapolate from, and the
threshold is the highest held-out score x `threshold_margin` (1.25), the conservative rule used before. The fit (`tails`) and the rate it predicts at the
threshold are stored in the artifact's config.json, so `training.evaluate` can print the predicted false
alarms per hour beside the measured ones. The global `threshold` (for cameras without a calibration of
their own) is the highest per-camera threshold. The region threshold is a high quantile of held-out
block scores x `threshold_margin`, never above the threshold.

(Before issue 14 held-out footage shorter than an hour got the highest held-out score x 1.25: half the
incidents never crossed it.)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from training.model import ModelConfig
from training.tail import MIN_PEAKS, Tail, fit_tail

logger = logging.getLogger(__name__)


@dataclass
class HeldOut:
    """One camera's held-out normal windows, scored: frame scores N and maps N x h x w in time order,
    and how many hours of footage they span."""

    scores: torch.Tensor
    maps: torch.Tensor
    hours: float


@dataclass
class Calibration:
    threshold: float
    thresholds: dict[str, float]
    region_threshold: float
    holdout_score_max: float
    tails: dict[str, Tail]
    predicted_false_alarms_per_hour: dict[str, float]  # what each camera's tail predicts at its threshold


def runs_above(scores: torch.Tensor, threshold: float) -> int:
    """How many runs of consecutive scores are strictly above `threshold`."""
    above = scores > threshold
    if not len(above):
        return 0
    starts = above[1:] & ~above[:-1]
    return int(starts.sum()) + int(above[0])


def calibrate(holdout: dict[str, HeldOut], config: ModelConfig) -> Calibration:
    """Thresholds from each camera's held-out normal scores (module docstring)."""
    thresholds: dict[str, float] = {}
    tails: dict[str, Tail] = {}
    predicted: dict[str, float] = {}
    highest = -math.inf
    for camera, held in holdout.items():
        if not len(held.scores):
            continue
        scores = held.scores.double()
        tail = fit_tail(scores.numpy(), held.hours, config.tail_quantile)
        top = float(scores.max())
        if tail.peaks >= MIN_PEAKS:
            thresholds[camera] = max(tail.threshold_for(config.false_alarms_per_hour), top)
        else:  # seconds of footage: no tail to extrapolate from; the conservative rule
            thresholds[camera] = _with_margin(top, config.threshold_margin)
        tails[camera] = tail
        predicted[camera] = tail.rate_above(thresholds[camera])
        highest = max(highest, top)
        logger.info(
            "camera %s: %s held-out windows (%.3f h), %s runs above %.4g (%.0f/h), GPD sigma %.3g xi %.3g: "
            "threshold %.4g (highest held-out %.4g), predicted %.3g false alarms/h",
            camera, len(scores), held.hours, tail.peaks, tail.level, tail.rate, tail.sigma, tail.xi,
            thresholds[camera], top, predicted[camera],
        )
    if not thresholds:
        raise ValueError("no held-out normal frames to calibrate the threshold on")
    threshold = max(thresholds.values())
    blocks = torch.cat([held.maps.flatten() for held in holdout.values()])
    region = _with_margin(float(torch.quantile(blocks.double(), config.region_quantile)), config.threshold_margin)
    return Calibration(
        threshold=threshold,
        thresholds=thresholds,
        region_threshold=min(region, threshold),
        holdout_score_max=highest,
        tails=tails,
        predicted_false_alarms_per_hour=predicted,
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
