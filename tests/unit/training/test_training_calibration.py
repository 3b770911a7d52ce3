"""Thresholds for a false-alarm rate, AUC, windows, and the exported scorer's shapes."""

from __future__ import annotations

import pytest
import torch

from training.calibration import HeldOut, calibrate, min_max_per_clip, roc_auc, runs_above
from training.model import AnomalyScorer, ModelConfig, Predictor
from training.tail import MIN_PEAKS
from training.windows import window_indices


def _held_out(scores: torch.Tensor, hours: float) -> HeldOut:
    return HeldOut(scores=scores, maps=scores.view(-1, 1, 1), hours=hours)


def test_threshold_is_extrapolated_from_the_tail_and_never_below_the_highest_held_out_score():
    # GIVEN two cameras' held-out scores: cam-a 0.1 h of exponential(1) noise, cam-b a few seconds
    generator = torch.Generator().manual_seed(0)
    noise = -torch.rand(1800, generator=generator, dtype=torch.float64).log()
    held = {"cam-a": _held_out(noise, 0.1), "cam-b": _held_out(torch.tensor([0.1, 0.4, 0.2]), 0.001)}

    # WHEN calibrated for 1 false alarm per hour
    calibration = calibrate(held, ModelConfig())

    # THEN cam-a's threshold is where the fitted tail crosses 1 run per hour (above every held-out
    # score: 1,800 frames in 0.1 h cannot show a 1-per-hour event); cam-b's 3 scores have no tail to
    # fit: its highest score x the margin 1.25
    tail = calibration.tails["cam-a"]
    assert calibration.thresholds["cam-a"] == pytest.approx(tail.threshold_for(1.0))
    assert calibration.thresholds["cam-a"] > float(noise.max())
    assert calibration.predicted_false_alarms_per_hour["cam-a"] == pytest.approx(1.0)
    assert calibration.tails["cam-b"].peaks < MIN_PEAKS
    assert calibration.thresholds["cam-b"] == pytest.approx(0.5)
    assert calibration.threshold == max(calibration.thresholds.values())
    assert 0 < calibration.region_threshold <= calibration.threshold


def test_runs_above_counts_runs_not_frames():
    scores = torch.tensor([0.0, 5.0, 5.0, 0.0, 3.0, 0.0, 2.0])
    assert [runs_above(scores, t) for t in (1.0, 2.5, 4.0, 6.0)] == [3, 2, 1, 0]


def test_roc_auc_and_per_clip_normalisation():
    labels = torch.tensor([False, False, True, True])
    assert roc_auc(torch.tensor([0.1, 0.2, 0.3, 0.4]), labels) == 1.0
    assert roc_auc(torch.tensor([0.4, 0.3, 0.2, 0.1]), labels) == 0.0
    assert roc_auc(torch.tensor([0.5, 0.5, 0.5, 0.5]), labels) == 0.5
    assert roc_auc(torch.tensor([0.1, 0.2]), torch.tensor([False, False])) is None
    # two clips on different scales: min-max per clip puts both on 0..1 (a flat clip at 0)
    assert [c.tolist() for c in min_max_per_clip([torch.tensor([2.0, 4.0, 3.0]), torch.tensor([7.0, 7.0])])] == [
        [0.0, 1.0, 0.5], [0.0, 0.0],
    ]


def test_windows_are_oldest_first_at_the_stride_and_repeat_frame_0_at_the_start():
    assert window_indices(5, 3, 2).tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 2], [0, 1, 3], [0, 2, 4]]
    assert window_indices(2, 1, 2).tolist() == [[0], [1]]


@pytest.mark.parametrize(
    ("window", "score_frames", "shape"),
    [(1, 1, (3, 101, 37, 3)), (3, 1, (3, 3, 101, 37, 3)), (3, 2, (3, 4, 101, 37, 3)), (1, 3, (3, 3, 101, 37, 3))],
)
def test_scorer_takes_frames_or_windows_of_any_size(window, score_frames, shape):
    # GIVEN a scorer for 48 x 80 frames with 8-pixel blocks, predicting from windows of `window` frames
    # and averaging `score_frames` predictions (so it takes window + score_frames - 1 frames)
    config = ModelConfig(input_size=(48, 80), temporal_window=window, score_frames=score_frames)
    scorer = AnomalyScorer(Predictor(config), config).eval()

    # WHEN it scores 3 uint8 items of another size
    scores, maps = scorer(torch.zeros(shape, dtype=torch.uint8))

    # THEN one score per item and one 6 x 10 block map per item
    assert (config.input_window, scores.shape, maps.shape) == (window + score_frames - 1, (3,), (3, 6, 10))


def test_a_frames_map_is_the_mean_of_its_last_predictions_maps():
    # GIVEN a temporal scorer (prediction error only) averaging 3 predictions of 3-frame windows, and the same network scoring
    # one prediction at a time
    torch.manual_seed(0)
    config = ModelConfig(input_size=(48, 80), temporal_window=3, score_frames=3, top_blocks=2, motion_weight=0)
    single = ModelConfig(input_size=(48, 80), temporal_window=3, score_frames=1, top_blocks=2, motion_weight=0)
    predictor = Predictor(config).eval()
    averaged, one = AnomalyScorer(predictor, config).eval(), AnomalyScorer(predictor, single).eval()
    frames = torch.randint(0, 256, (2, 5, 48, 80, 3), dtype=torch.uint8)

    # WHEN both score the last frame of 5-frame windows
    with torch.inference_mode():
        scores, maps = averaged(frames)
        parts = [one(frames[:, j : j + 3])[1] for j in range(3)]

    # THEN the map is the mean of the three predictions' maps, and the score its 2 highest blocks' mean
    expected = torch.stack(parts).mean(dim=0)
    assert torch.allclose(maps, expected, atol=1e-6)
    assert torch.allclose(scores, expected.flatten(1).topk(2, dim=1).values.mean(dim=1), atol=1e-6)


def test_model_config_is_checked():
    with pytest.raises(ValueError, match="must be positive multiples of 8"):
        ModelConfig(input_size=(50, 80))
    with pytest.raises(ValueError, match="temporal_window must be >= 1"):
        ModelConfig(temporal_window=0)
    with pytest.raises(ValueError, match="score_frames must be >= 1"):
        ModelConfig(score_frames=0)
