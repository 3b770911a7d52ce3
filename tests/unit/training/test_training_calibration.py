"""Thresholds for a false-alarm rate, AUC, windows, and the exported scorer's shapes."""

from __future__ import annotations

import pytest
import torch

from training.calibration import calibrate, min_max_per_clip, rate_threshold, roc_auc, runs_above
from training.model import AnomalyScorer, ModelConfig, Predictor
from training.windows import window_indices


def test_calibration_is_max_held_out_score_times_margin_when_held_out_footage_is_short():
    # GIVEN held-out score maps of two cameras (scores 0.1 / 0.2 for cam-a, 0.4 for cam-b): seconds, not hours
    maps = {
        "cam-a": torch.tensor([[[0.1, 0.0]], [[0.05, 0.2]]]),
        "cam-b": torch.tensor([[[0.4, 0.0]]]),
    }

    # WHEN calibrated for 1 false alarm per hour with the default margin 1.25
    calibration = calibrate(maps, ModelConfig())

    # THEN no run may pass: per-camera max x margin, the global default is the highest, regions below it
    assert calibration.thresholds == pytest.approx({"cam-a": 0.25, "cam-b": 0.5})
    assert (calibration.threshold, calibration.holdout_score_max) == pytest.approx((0.5, 0.4))
    assert 0 < calibration.region_threshold <= calibration.threshold


def test_rate_threshold_allows_one_run_per_hour_of_held_out_footage():
    # GIVEN 2 hours of held-out scores at 5 fps (36,000), flat at 0 but for three bursts: 5.0, 3.0, 2.0
    scores = torch.zeros(36_000)
    scores[100:103], scores[20_000:20_004], scores[30_000] = 5.0, 3.0, 2.0

    # WHEN the threshold for 1 false alarm per hour is chosen THEN two runs may pass it: 3.0 leaves one (5.0)
    # above it, 2.0 leaves two; the lowest threshold with at most two runs above is 2.0
    assert rate_threshold(scores, 5.0, 1.0) == 2.0
    assert runs_above(scores, 2.0) == 2
    # AND at 0.5 per hour (one run allowed), and for an hour's footage at 0 per hour (none allowed)
    assert rate_threshold(scores, 5.0, 0.5) == 3.0
    assert rate_threshold(scores, 5.0, 0.0) == 5.0


def test_standardised_negative_threshold_is_still_raised_by_the_margin():
    calibration = calibrate({"c": torch.tensor([[[-2.0]], [[-1.0]]])}, ModelConfig())
    assert calibration.threshold == pytest.approx(-0.75)


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
    # GIVEN a temporal scorer averaging 3 predictions of 3-frame windows, and the same network scoring
    # one prediction at a time
    torch.manual_seed(0)
    config = ModelConfig(input_size=(48, 80), temporal_window=3, score_frames=3, top_blocks=2)
    single = ModelConfig(input_size=(48, 80), temporal_window=3, score_frames=1, top_blocks=2)
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
