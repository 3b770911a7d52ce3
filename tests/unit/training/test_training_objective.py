"""The training objective's parts: the image-gradient term and the weight average that is exported."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.train import WeightAverage, gradient_loss


def test_gradient_loss_is_zero_for_the_target_and_grows_with_blur():
    # GIVEN a frame with sharp edges, the same frame, and a blurred copy with the same mean
    torch.manual_seed(0)
    target = (torch.rand(2, 1, 32, 48) > 0.5).float()
    blurred = F.avg_pool2d(target, 3, stride=1, padding=1, count_include_pad=False)

    # WHEN the gradient term compares each with the target
    same, blur = gradient_loss(target, target), gradient_loss(blurred, target)

    # THEN the exact prediction costs nothing and the blurred one is penalised
    assert (same.item(), blur.item() > 0.1) == (0.0, True)


def test_weight_average_warms_up_then_decays_at_the_given_rate():
    # GIVEN the average with decay 0.998
    average = WeightAverage(0.998)
    averaged, current = torch.tensor([1.0]), torch.tensor([0.0])

    # WHEN it updates after 1, 90 and 10,000 steps
    early = average(averaged, current, torch.tensor(1))
    middle = average(averaged, current, torch.tensor(90))
    late = average(averaged, current, torch.tensor(10_000))

    # THEN the early updates follow the weights closely (decay (1 + n) / (10 + n)), later ones at most 0.998
    assert [round(x.item(), 6) for x in (early, middle, late)] == [round(2 / 11, 6), 0.91, 0.998]


def test_weight_average_keeps_counters_as_they_are():
    # GIVEN BatchNorm's num_batches_tracked, an integer counter
    averaged, current = torch.tensor(5), torch.tensor(9)

    # WHEN the average updates it THEN it takes the current count
    assert WeightAverage(0.998)(averaged, current, torch.tensor(100)).item() == 9
