"""Run an iterator ahead of its consumer on a thread of its own, through a bounded queue.

Why: a KVS camera's reader thread used to fetch (HTTP), parse (MKV) and decode (H.264) in turn,
so the core the decoder leaves free while the reader parsed sat idle, and the reverse. With the
fetching and parsing on their own thread, FFmpeg decodes (outside the GIL) while the next
fragment is read and parsed: on 2 cores the worker went from 0.60 to ~0.68 of keyframe-only
decoding on the cheapest-to-decode input (`make bench-worker`, ultrafast; with OpenCV's pool off).

The queue is bounded (`maxsize` items), so a slow consumer slows the producer down instead of
piling items up. The producer's exception is raised in the consumer, after the items that came
before it. When the consumer stops early (or `stop_event` is set), the producer stops at its next
item and closes its iterator on its own thread (a generator can only be closed by the thread
running it)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.1  # how often a blocked put or get looks at the stop signals


class _End:
    """The producer's last item: it finished, or raised `error`."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetched(
    items: Iterator[T], *, maxsize: int, name: str, stop_event: threading.Event | None = None
) -> Generator[T, None, None]:
    """The items of `items`, produced by a daemon thread called `name` up to `maxsize` ahead."""
    buffer: queue.Queue[T | _End] = queue.Queue(maxsize)
    halt = threading.Event()

    def stopped() -> bool:
        return halt.is_set() or (stop_event is not None and stop_event.is_set())

    def put(item: T | _End) -> bool:
        while not stopped():
            try:
                buffer.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        end = _End()
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - not swallowed: handed to the consumer, raised there
            end = _End(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        put(end)

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        while True:
            try:
                item = buffer.get(timeout=POLL_S)
            except queue.Empty:
                if not producer.is_alive() and buffer.empty():
                    return  # stopped without a last item (stop_event)
                continue
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        halt.set()
