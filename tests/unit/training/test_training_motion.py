"""The motion cue (OpenCV DIS flow, per-cell speed, `inference.motion`), the generalized Pareto tail,
and the fused scorer's TorchScript round trip."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from inference.motion import DisMotion, MotionSpec
from inference.scoring import Scoring
from training.model import AnomalyScorer, ModelConfig, Predictor
from training.tail import Tail, fit_gpd, fit_tail, run_peaks


def _moving_square(dx: int, dy: int, window: int = 3) -> np.ndarray:
    """One uint8 1 x window x 128 x 192 x 3 window: a textured square moving (dx, dy) px per frame over
    a faint, still background."""
    rng = np.random.default_rng(0)
    background = (rng.random((128, 192)) * 20 + 60).astype(np.uint8)
    texture = np.kron(rng.integers(100, 255, (6, 6)), np.ones((4, 4))).astype(np.uint8)  # 24 x 24
    frames = np.repeat(background[np.newaxis], window, axis=0)
    for t in range(window):
        y, x = 40 + dy * t, 40 + dx * t
        frames[t, y : y + 24, x : x + 24] = texture
    return np.repeat(frames[..., np.newaxis], 3, axis=-1)[np.newaxis]


@pytest.mark.parametrize(("dx", "dy"), [(3, 0), (-2, 4), (6, 5)])
def test_dis_speed_of_a_moving_square_is_its_displacement(dx, dy):
    # GIVEN a textured square that moves (dx, dy) pixels per frame at the flow's own size
    window = _moving_square(dx, dy)

    # WHEN the motion cue is computed as the endpoint does (the last 2 pairs, 16 px cells)
    speed = DisMotion(MotionSpec(size=(128, 192), cell=16, pairs=2), threads=1)(window)

    # THEN the fastest cell moves at about the square's speed, and the far background does not move
    assert speed.shape == (1, 8, 12)
    assert float(speed.max()) == pytest.approx(math.hypot(dx, dy), rel=0.35)
    assert float(speed[0, 6:, 9:].max()) < 0.3


def test_a_pair_of_identical_frames_is_padding_not_stillness():
    # GIVEN a window whose oldest frames repeat (the start of a stream), then one real move of 5 px
    moving = _moving_square(5, 0, window=2)
    padded = np.concatenate([moving[:, :1], moving], axis=1)  # frames 0, 0, 1

    # WHEN the last 2 pairs are averaged
    motion = DisMotion(MotionSpec(pairs=2), threads=2)
    speed_padded, speed_single = motion(padded), DisMotion(MotionSpec(pairs=1), threads=1)(moving)

    # THEN the padding pair is left out (not averaged in as a speed of 0)
    np.testing.assert_allclose(speed_padded, speed_single, atol=1e-4)


def test_motion_spec_refuses_what_cannot_be_computed():
    with pytest.raises(ValueError, match="multiples of cell 16"):
        MotionSpec(size=(120, 192), cell=16)
    with pytest.raises(ValueError, match="preset must be one of"):
        MotionSpec(preset="slow")
    assert MotionSpec.from_config(MotionSpec().to_dict()) == MotionSpec()


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

    # WHEN it is scripted, saved and loaded, and both score the windows with the motion cue
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(scorer), buffer)
    buffer.seek(0)
    motion_cue = DisMotion(config.motion_spec, threads=1)
    eager_scoring, loaded = Scoring(scorer, motion_cue), Scoring(torch.jit.load(buffer), motion_cue)
    with torch.inference_mode():
        eager, scripted = eager_scoring(base), loaded(base)
        motion, _ = loaded.components(base)

    # THEN the round trip changes nothing, and only the moving square's window has motion above normal
    assert torch.allclose(eager[0], scripted[0], atol=1e-5) and torch.allclose(eager[1], scripted[1], atol=1e-5)
    assert float(motion[0].max()) > 1.0
    assert float(motion[1].max()) < 0.1
