"""Frame sampler: about sample_fps frames per second of media time, whatever the source's rate."""

from __future__ import annotations

import pytest

from worker.sampler import FrameSampler


def kept(sampler: FrameSampler, pts: list[float]) -> list[float]:
    return [t for t in pts if sampler.accept(t)]


@pytest.mark.parametrize(
    ("source_fps", "sample_fps", "every"),
    [(10, 5, 2), (30, 5, 6), (25, 5, 5), (10, 10, 1), (10, 30, 1), (30, 1, 30)],
)
def test_constant_rate_keeps_one_in_n(source_fps: int, sample_fps: float, every: int):
    # GIVEN 10 s of frames at source_fps (timestamps as a demuxer gives them: i / fps)
    pts = [i / source_fps for i in range(10 * source_fps)]

    # WHEN sampled
    result = kept(FrameSampler(sample_fps), pts)

    # THEN every n-th frame, from the first
    assert result == pts[::every]


def test_non_integer_ratio_keeps_the_average_rate():
    # GIVEN 10 fps sampled at 3 fps for 10 s
    pts = [i / 10 for i in range(100)]

    result = kept(FrameSampler(3), pts)

    # THEN 30 frames (the first at or after each 1/3 s), never two closer than one source frame gap
    assert len(result) == 30
    assert result[:4] == [0.0, 0.4, 0.7, 1.0]


def test_keyframes_only_at_one_per_second():
    keyframes = [float(i) for i in range(10)]

    assert kept(FrameSampler(1), keyframes) == keyframes
    assert kept(FrameSampler(0.5), keyframes) == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_a_gap_restarts_the_schedule_without_a_burst():
    # GIVEN 1 s of 10 fps, a 9 s gap, then 1 s more
    pts = [i / 10 for i in range(10)] + [10 + i / 10 for i in range(10)]

    result = kept(FrameSampler(5), pts)

    # THEN after the gap the frames are still 0.2 s apart
    assert result == [0.0, 0.2, 0.4, 0.6, 0.8, 10.0, 10.2, 10.4, 10.6, 10.8]


def test_reset_forgets_the_schedule():
    sampler = FrameSampler(1)
    assert sampler.accept(5.0)
    assert not sampler.accept(2.0)

    sampler.reset()

    assert sampler.accept(2.0)


def test_sample_fps_must_be_positive():
    with pytest.raises(ValueError, match="sample_fps must be > 0"):
        FrameSampler(0)
