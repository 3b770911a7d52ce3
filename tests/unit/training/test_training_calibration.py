"""Thresholds, AUC, the hold-out split, and the exported scorer's shapes."""

from __future__ import annotations

import pytest
import torch

from training.calibration import calibrate, roc_auc
from training.model import AnomalyScorer, AutoEncoder, ModelConfig
from training.train import split_holdout


def test_calibration_is_max_held_out_score_times_margin_per_camera():
    # GIVEN held-out error maps of two cameras (scores 0.1 / 0.2 for cam-a, 0.4 for cam-b)
    maps = {
        "cam-a": torch.tensor([[[0.1, 0.0]], [[0.05, 0.2]]]),
        "cam-b": torch.tensor([[[0.4, 0.0]]]),
    }

    # WHEN calibrated with the default margin 1.25
    calibration = calibrate(maps, ModelConfig())

    # THEN per-camera thresholds, the global default is the highest, regions below the threshold
    assert calibration.thresholds == pytest.approx({"cam-a": 0.25, "cam-b": 0.5})
    assert (calibration.threshold, calibration.holdout_score_max) == pytest.approx((0.5, 0.4))
    assert 0 < calibration.region_threshold <= calibration.threshold


def test_roc_auc():
    labels = torch.tensor([False, False, True, True])
    assert roc_auc(torch.tensor([0.1, 0.2, 0.3, 0.4]), labels) == 1.0
    assert roc_auc(torch.tensor([0.4, 0.3, 0.2, 0.1]), labels) == 0.0
    assert roc_auc(torch.tensor([0.5, 0.5, 0.5, 0.5]), labels) == 0.5
    assert roc_auc(torch.tensor([0.1, 0.2]), torch.tensor([False, False])) is None


def test_split_holds_back_the_last_fifth():
    frames = torch.arange(10)
    train, holdout = split_holdout(frames, 0.2)
    assert (train.tolist(), holdout.tolist()) == (list(range(8)), [8, 9])
    assert [t.tolist() for t in split_holdout(torch.arange(1), 0.2)] == [[0], []]


def test_scorer_takes_any_frame_size():
    # GIVEN a scorer for 48 x 80 frames with 8-pixel blocks
    config = ModelConfig(input_size=(48, 80))
    scorer = AnomalyScorer(AutoEncoder(config), config).eval()

    # WHEN it scores 3 uint8 frames of another size
    scores, maps = scorer(torch.zeros((3, 101, 37, 3), dtype=torch.uint8))

    # THEN one score per frame, one 6 x 10 block map per frame, score = max of the map
    assert (scores.shape, maps.shape) == ((3,), (3, 6, 10))
    assert torch.equal(scores, maps.flatten(1).amax(1))


def test_input_size_must_fit_the_network():
    with pytest.raises(ValueError, match="must be positive multiples of 16"):
        ModelConfig(input_size=(50, 80))
