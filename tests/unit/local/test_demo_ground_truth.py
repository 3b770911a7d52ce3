from local.demo import SAMPLE_VIDEO
from local.ground_truth import EmptyStretches


def test_sample_stretches_with_tolerance():
    truth = EmptyStretches.for_video(str(SAMPLE_VIDEO))
    assert truth is not None and truth.tolerance_s == 1.0
    # inside an empty stretch by more than the tolerance: empty
    assert [truth.is_empty_at(t) for t in (3.0, 21.5, 47.0, 138.0)] == [True, True, True, True]
    # people in view, and the edges of a stretch (someone entering), are not false alarms
    assert [truth.is_occupied_at(t) for t in (6.0, 12.0, 22.8, 100.0, 135.5)] == [True] * 5
