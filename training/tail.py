"""The threshold for a false-alarm rate, extrapolated from a generalized Pareto tail (peaks over
threshold, as SPOT does: Siffer et al., "Anomaly Detection in Streams with Extreme Value Theory", KDD 2017).

A new camera has minutes of held-out normal footage, and the target is about one false alarm per hour:
no held-out score is ever that rare, so the threshold has to be extrapolated. Extreme value theory says
the excesses over a high level u of (nearly) any score distribution follow a generalized Pareto
distribution GPD(sigma, xi) (Pickands-Balkema-de Haan). The worker alerts on runs of frames over the
threshold, and consecutive frames' scores are dependent, so the peaks are declustered first (runs
declustering, Coles 2001 ch. 5): each run of held-out scores above u is one peak, its maximum. With
`rate_u` such runs per hour, a threshold z > u is crossed by `rate_u * (1 + xi (z - u) / sigma)^(-1/xi)`
runs per hour; solving for the target rate gives the threshold.

The fit is maximum likelihood by Grimshaw's reduction (a one-dimensional search over theta = xi / sigma,
here on a grid, which is robust with the dozen peaks a short calibration has); with fewer than
`MIN_PEAKS` peaks the exponential tail (xi = 0, sigma = mean excess) is used: a shape is not estimable.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np

logger = logging.getLogger(__name__)

MIN_PEAKS = 8  # fewer peaks than this: exponential tail (xi = 0)
XI_BOUNDS = (-0.5, 0.5)  # shapes outside this are not credible from a few dozen peaks; clipped


@dataclass
class Tail:
    """A fitted tail: runs above `level` happen `rate` times per hour; their peaks' excesses are GPD."""

    level: float  # u
    sigma: float
    xi: float
    rate: float  # runs above u per hour of held-out footage
    peaks: int

    def rate_above(self, threshold: float) -> float:
        """Predicted runs per hour above `threshold` (at most `rate`: below u, the measured rate is kept)."""
        excess = max(0.0, threshold - self.level)
        return self.rate * survival(excess, self.sigma, self.xi)

    def threshold_for(self, rate: float) -> float:
        """The threshold crossed by `rate` runs per hour (u when `rate` >= the measured rate above u)."""
        if rate >= self.rate or self.rate <= 0:
            return self.level
        p = rate / self.rate
        if abs(self.xi) < 1e-9:
            return self.level - self.sigma * math.log(p)
        return self.level + self.sigma / self.xi * (p ** (-self.xi) - 1.0)

    def to_dict(self) -> dict:
        return asdict(self)


def survival(excess: float, sigma: float, xi: float) -> float:
    """P(Y > excess) for Y ~ GPD(sigma, xi)."""
    if abs(xi) < 1e-9:
        return math.exp(-excess / sigma)
    base = 1.0 + xi * excess / sigma
    return 0.0 if base <= 0 else base ** (-1.0 / xi)


def fit_gpd(excesses: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood (sigma, xi) of positive excesses (Grimshaw's reduction, grid over theta)."""
    y = np.asarray(excesses, dtype=np.float64)
    y = y[y > 0]
    if len(y) == 0:
        return 1e-12, 0.0
    mean = float(y.mean())
    if len(y) < MIN_PEAKS:
        return mean, 0.0
    best_ll, best = -len(y) * math.log(mean) - len(y), (mean, 0.0)  # exponential
    y_max = float(y.max())
    # theta = xi / sigma: negative down to -1 / y_max (a bounded tail), positive up to heavy tails
    thetas = np.concatenate([-(1.0 - np.logspace(-6, 0, 200, endpoint=False)) / y_max,
                             np.logspace(-4, 4, 400) / mean])
    for theta in thetas:
        logs = np.log1p(theta * y)
        xi = float(logs.mean())
        if abs(xi) < 1e-12:
            continue
        sigma = xi / theta
        if sigma <= 0:
            continue
        ll = -len(y) * math.log(sigma) - (1.0 + 1.0 / xi) * float(logs.sum())
        if ll > best_ll:
            best_ll, best = ll, (sigma, xi)
    sigma, xi = best
    if not XI_BOUNDS[0] <= xi <= XI_BOUNDS[1]:  # refit sigma at the clipped shape
        xi = min(max(xi, XI_BOUNDS[0]), XI_BOUNDS[1])
        sigma = _sigma_given_xi(y, xi)
    return sigma, xi


def _sigma_given_xi(y: np.ndarray, xi: float) -> float:
    """MLE of sigma with xi fixed (golden-section on the log-likelihood over a bracket)."""
    def ll(sigma: float) -> float:
        base = 1.0 + xi * y / sigma
        if (base <= 0).any():
            return -math.inf
        return -len(y) * math.log(sigma) - (1.0 + 1.0 / xi) * float(np.log(base).sum())

    lo, hi = max(1e-12, -xi * float(y.max())) + 1e-12, 100.0 * float(y.mean()) + 1e-12
    for _ in range(100):
        a, b = lo + (hi - lo) * 0.382, lo + (hi - lo) * 0.618
        if ll(a) < ll(b):
            lo = a
        else:
            hi = b
    return (lo + hi) / 2.0


def run_peaks(scores: np.ndarray, level: float) -> np.ndarray:
    """The maximum of each run of consecutive scores strictly above `level`."""
    above = scores > level
    peaks, current = [], None
    for value, flag in zip(scores.tolist(), above.tolist(), strict=True):
        if flag:
            current = value if current is None else max(current, value)
        elif current is not None:
            peaks.append(current)
            current = None
    if current is not None:
        peaks.append(current)
    return np.asarray(peaks, dtype=np.float64)


def fit_tail(scores: np.ndarray, hours: float, quantile: float) -> Tail:
    """Fit the tail of held-out normal frame scores (in time order, `hours` of footage) above their
    `quantile`."""
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores) or hours <= 0:
        raise ValueError("no held-out scores to fit a tail to")
    level = float(np.quantile(scores, quantile))
    if level >= scores.max():  # too few distinct scores: the level must leave a peak above it
        level = float(np.sort(scores)[-2]) if len(scores) > 1 else float(scores[0]) - 1e-6
    peaks = run_peaks(scores, level)
    sigma, xi = fit_gpd(peaks - level)
    return Tail(level=level, sigma=sigma, xi=xi, rate=len(peaks) / hours, peaks=len(peaks))
