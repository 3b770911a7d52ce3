from contracts.retry import backoff_delay


def test_backoff_is_capped_and_never_overflows_after_many_failures():
    # a silent camera polled for hours: attempt counts in the thousands must not crash the reader
    for attempt in (0, 5, 1_024, 100_000):
        assert 0 < backoff_delay(attempt, base_s=0.1, cap_s=5.0) <= 5.0
    assert 0.05 <= backoff_delay(0, base_s=0.1) <= 0.1
