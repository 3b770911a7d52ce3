"""`prefetched`: an iterator run ahead on its own thread, through a bounded queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from worker.prefetch import prefetched


def wait_for(condition, timeout_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


def test_items_arrive_in_order_from_another_thread() -> None:
    threads: set[str] = set()

    def numbers() -> Iterator[int]:
        for i in range(100):
            threads.add(threading.current_thread().name)
            yield i

    assert list(prefetched(numbers(), maxsize=4, name="numbers")) == list(range(100))
    assert threads == {"numbers"}


def test_the_producer_runs_at_most_maxsize_ahead() -> None:
    produced: list[int] = []

    def numbers() -> Iterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    items = prefetched(numbers(), maxsize=3, name="bounded")
    assert next(items) == 0
    # the consumer took 1: the queue holds 3 more and the producer waits with the next one in hand
    assert wait_for(lambda: len(produced) == 5)
    time.sleep(0.05)
    assert len(produced) == 5
    items.close()


def test_the_producers_error_is_raised_after_the_items_before_it() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("stream broke")

    got: list[int] = []
    with pytest.raises(ValueError, match="stream broke"):
        for item in prefetched(failing(), maxsize=8, name="failing"):
            got.append(item)  # noqa: PERF402 - list() would lose the items before the error
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_and_closes_the_producer() -> None:
    closed_on: list[str] = []

    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed_on.append(threading.current_thread().name)

    items = prefetched(endless(), maxsize=2, name="endless")
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    # the generator is closed by the thread that ran it (another thread could not close it)
    assert wait_for(lambda: closed_on == ["endless"])
    assert not any(thread.name == "endless" for thread in threading.enumerate())


def test_the_stop_event_ends_both_sides() -> None:
    stop = threading.Event()

    def slow() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1
            time.sleep(0.01)

    got = []
    for item in prefetched(slow(), maxsize=2, name="slow", stop_event=stop):
        got.append(item)
        if item == 3:
            stop.set()
    assert got[:4] == [0, 1, 2, 3]
    assert len(got) <= 4 + 2  # what was already queued, no more
    assert wait_for(lambda: not any(thread.name == "slow" for thread in threading.enumerate()))
