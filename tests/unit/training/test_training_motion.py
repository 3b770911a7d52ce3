"""The motion cue (torch Lucas-Kanade flow, per-cell speed), the generalized Pareto tail, and the fused
scorer's TorchScript round trip."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.flow import cell_speed, lucas_kanade
from training.model import AnomalyScorer, ModelConfig, Predictor
from training.tail import Tail, fit_gpd, fit_tail, run_peaks


def _textured_square(dx: int, dy: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    background = F.avg_pool2d(torch.rand(1, 1, 66, 98, generator=generator) * 0.1, 3, 1)  # 64 x 96, faint
    # a texture smooth enough for the gradients to describe it (pixel noise aliases at every level)
    texture = F.interpolate(torch.rand(1, 1, 6, 6, generator=generator), size=(16, 16), mode="bicubic",
                            align_corners=True).clamp(0, 1) * 0.6 + 0.3
    first, second = background.clone(), background.clone()
    first[..., 20:36, 30:46] = texture
    second[..., 20 + dy : 36 + dy, 30 + dx : 46 + dx] = texture
    return first, second


@pytest.mark.parametrize(("dx", "dy"), [(3, 0), (-2, 4), (6, 5)])
def test_flow_of_a_moving_square_is_its_displacement(dx, dy):
    # GIVEN a textured square that moves (dx, dy) pixels between two frames, over a faint background
    first, second = _textured_square(dx, dy)

    # WHEN the flow is computed as the model does (3-level pyramid: displacements up to ~8 px)
    flow = lucas_kanade(first, second, levels=3, iterations=3, window=7, ridge=ModelConfig().flow_ridge)

    # THEN inside the square (away from its edges) the flow is the displacement, within 0.3 px
    inside = flow[0, :, 24:32, 34:42].mean(dim=(1, 2))
    assert inside.tolist() == pytest.approx([dx, dy], abs=0.3)
    # AND the still background far from it does not move
    assert float(flow[0, :, 50:, 70:].abs().max()) < 0.2


def test_cell_speed_is_the_mean_magnitude_per_cell():
    flow = torch.zeros(1, 2, 16, 16)
    flow[0, 0, :8, :8], flow[0, 1, :8, :8] = 3.0, 4.0  # speed 5 in the top-left cell
    assert cell_speed(flow, 8).tolist() == [[[5.0, 0.0], [0.0, 0.0]]]


def test_gpd_fit_recovers_a_known_tail():
    # GIVEN 4,000 draws of a GPD(sigma=2, xi=0.2) (inverse CDF)
    u = np.random.default_rng(0).random(4000)
    sigma, xi = 2.0, 0.2
    draws = sigma / xi * ((1.0 - u) ** (-xi) - 1.0)

    # WHEN fitted THEN the parameters come back within sampling error
    fitted_sigma, fitted_xi = fit_gpd(draws)
    assert (fitted_sigma, fitted_xi) == pytest.approx((2.0, 0.2), abs=0.12)


def test_tail_threshold_and_rate_are_inverse():
    tail = Tail(level=1.0, sigma=0.5, xi=0.1, rate=100.0, peaks=30)
    threshold = tail.threshold_for(1.0)
    assert threshold > 1.0 and tail.rate_above(threshold) == pytest.approx(1.0)
    assert Tail(level=1.0, sigma=0.5, xi=0.0, rate=100.0, peaks=30).threshold_for(1.0) == pytest.approx(
        1.0 + 0.5 * math.log(100.0)
    )
    assert tail.threshold_for(500.0) == 1.0  # more than the measured rate: the level itself


def test_tail_is_fitted_to_runs_not_frames():
    # GIVEN scores where each excursion above the level lasts 3 frames
    scores = np.zeros(300)
    for start in range(10, 300, 20):
        scores[start : start + 3] = [1.0, 2.0 + start / 300, 1.5]
    assert len(run_peaks(scores, 0.5)) == 15

    # WHEN the tail over the 90th percentile is fitted on 1 hour of footage
    tail = fit_tail(scores, 1.0, 0.9)

    # THEN its rate counts runs (each run's peak), not frames
    assert (tail.peaks, tail.rate) == (15, 15.0)


def test_the_fused_scorer_survives_torchscript_and_sees_motion():
    # GIVEN a fused scorer with normal statistics set, and windows where a square moves vs stays still
    config = ModelConfig(input_size=(64, 96))
    torch.manual_seed(0)
    scorer = AnomalyScorer(Predictor(config), config).eval()
    scorer.set_normal_stats(torch.full((8, 12), 0.2), 1.0, 1.0)
    base = torch.full((2, config.input_window, 128, 192, 3), 60, dtype=torch.uint8)
    generator = torch.Generator().manual_seed(1)
    texture = torch.randint(100, 255, (24, 24, 3), dtype=torch.uint8, generator=generator)
    for t in range(config.input_window):
        base[0, t, 40:64, 20 + 8 * t : 44 + 8 * t] = texture  # moving: 8 px per frame at 128 x 192
        base[1, t, 40:64, 20:44] = texture  # still

    # WHEN it is scripted, saved and loaded, and both score the windows
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(scorer), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    with torch.inference_mode():
        eager, scripted = scorer(base), loaded(base)
        motion, _ = loaded.components(base)

    # THEN the round trip changes nothing, and only the moving square's window has motion above normal
    assert torch.allclose(eager[0], scripted[0], atol=1e-5) and torch.allclose(eager[1], scripted[1], atol=1e-5)
    assert float(motion[0].max()) > 1.0
    assert float(motion[1].max()) < 0.1
