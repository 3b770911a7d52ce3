"""One `InvokeEndpoint` call for the frames of many cameras (fleet mode: one worker process).

    analyser cam-1 --detect--> CameraDetector(cam-1) --submit--+
    analyser cam-2 --detect--> CameraDetector(cam-2) --submit--+--> pending --> dispatchers --> endpoint
    ...                                                         |   (size and wait bounded; up to
                                                                     MAX_IN_FLIGHT calls at once)

Each camera keeps its own `CameraDetector`, a `TemporalDetector` whose temporal history (`observe`)
is its camera's alone: by the time it submits, every item is resolved (a frame, or the window of
its camera's last T sampled frames). Only the call is shared. The dispatcher takes the oldest
pending request, waits until `max_batch` items of the same shape are pending or `max_wait_s` has
passed since that request came in, and sends one call with as many pending requests of that shape
as fit `max_batch`, `MAX_PAYLOAD_BYTES` and the custom-attributes limit; a request is never split.
The call names one camera per item (`camera_ids`), so each result carries its camera's calibrated
threshold; each caller gets its slice of the response. The model's input size and window, as the
endpoint last named them, are handed to each camera that joins later, so it sends frames at the
model's size (`worker.detector.inference_size`) from its first call. A failed call fails every request in it
with a `DetectorError` (or window mismatch, which each camera handles as it always does), each
caller raising its own copy.

Up to `MAX_IN_FLIGHT` calls are out at once, one per dispatcher thread: a slow or retried call
(the endpoint client retries with backoff) holds up the cameras in it, not every camera of the task.
A camera's own calls stay in order (its analyser waits for each answer before it submits again).

`stop()`: no new requests are taken (`DetectorError` at once), the pending ones are sent without
waiting for the wait bound, then the dispatcher ends; a caller never waits on a stopped dispatcher."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from contracts.inference import (
    CAMERA_ATTRIBUTE,
    CAMERA_IDS_ATTRIBUTE,
    CAMERA_IDS_SEPARATOR,
    MAX_CUSTOM_ATTRIBUTES_CHARS,
    MAX_PAYLOAD_BYTES,
    InferenceResponse,
)
from worker.detector import (
    NPY_HEADER_BYTES,
    REPORT_INPUT_SIZE,
    DetectorError,
    EndpointClient,
    TemporalDetector,
    WindowMismatch,
)

logger = logging.getLogger(__name__)

Send = Callable[[list[np.ndarray], int, str], InferenceResponse]
"""One call: (items, temporal window, custom attributes) -> one result per item, in order."""


@dataclass(eq=False)
class _Request:
    camera_id: str
    items: list[np.ndarray]
    window: int
    arrived_s: float
    done: threading.Event = field(default_factory=threading.Event)
    response: InferenceResponse | None = None
    error: Exception | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.items[0].shape

    @property
    def nbytes(self) -> int:
        return sum(item.nbytes for item in self.items)

    def finish(self, response: InferenceResponse | None = None, error: Exception | None = None) -> None:
        self.response, self.error = response, error
        self.done.set()


def _own(error: Exception) -> Exception:
    """A failed call's error as one caller's own exception: every camera of the batch raises it, and
    one object raised in several threads would gather all their tracebacks (and keep their frames)."""
    if isinstance(error, WindowMismatch):
        return WindowMismatch(error.window, error.input_size)
    return DetectorError(str(error))


def custom_attributes(cameras: list[str]) -> str:
    """`camera_id=<id>` when every item is one camera's, else `camera_ids=<id>|<id>|...` per item."""
    if len(set(cameras)) == 1:
        return f"{CAMERA_ATTRIBUTE}={cameras[0]}"
    return f"{CAMERA_IDS_ATTRIBUTE}={CAMERA_IDS_SEPARATOR.join(cameras)}"


MAX_IN_FLIGHT = 4
"""Shared calls out at the same time (dispatcher threads)."""


class BatchingDetector:
    """The dispatcher one worker process shares among its cameras; `for_camera` gives each camera
    its `Detector`."""

    def __init__(
        self,
        send: Send,
        *,
        endpoint_name: str,
        max_batch: int = 8,
        max_wait_s: float = 0.02,
        max_in_flight: int = MAX_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`send`: one call (`EndpointClient.score` in production, a fake in tests)."""
        if max_batch < 1 or max_wait_s < 0 or max_in_flight < 1:
            raise ValueError(
                f"max_batch and max_in_flight must be >= 1 and max_wait_s >= 0, got {max_batch}, {max_in_flight}, "
                f"{max_wait_s}"
            )
        self._send = send
        self.endpoint_name = endpoint_name
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_in_flight = max_in_flight
        self.clock = clock
        self.calls = 0
        self.items_sent = 0
        self.temporal_window: int | None = None  # the last window the endpoint answered for
        self.input_size: tuple[int, int] | None = None  # the model's (height, width), as last named
        self._pending: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._dispatch_loop, name=f"batch-dispatcher-{i}", daemon=True)
            for i in range(self.max_in_flight)
        ]
        for thread in self._threads:
            thread.start()
        logger.info(
            "batching detector started max_batch=%d max_wait_ms=%.0f max_in_flight=%d",
            self.max_batch, self.max_wait_s * 1000, self.max_in_flight,
        )

    def stop(self) -> None:
        """Take no more requests, send the pending ones now, end the dispatcher."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
        with self._cond:  # never started, or ended by a bug: nobody may wait forever
            self._fail(list(self._pending), DetectorError("batching detector stopped"))
            self._pending.clear()
        logger.info("batching detector stopped calls=%d items=%d", self.calls, self.items_sent)

    def for_camera(self, camera_id: str, *, max_side: int | None = None) -> CameraDetector:
        return CameraDetector(self, camera_id=camera_id, max_side=max_side)

    # -- callers (analyser threads) ----------------------------------------------------------------

    def submit(self, camera_id: str, items: list[np.ndarray], window: int) -> InferenceResponse:
        """Score `items` of one camera in the next shared call; blocks until it is answered."""
        if not items:
            raise DetectorError(f"no items to score camera={camera_id}")
        request = _Request(camera_id, list(items), window, self.clock())
        with self._cond:
            if self._stopping or not self._threads:
                raise DetectorError(f"batching detector is not running camera={camera_id}")
            self._pending.append(request)
            self._cond.notify_all()
        request.done.wait()
        if request.error is not None:
            raise _own(request.error) from request.error
        assert request.response is not None
        return request.response

    # -- the dispatcher thread -------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            self._call(batch)

    def _next_batch(self) -> list[_Request] | None:
        """The requests of the next call (lock held); None once stopped with nothing pending."""
        while True:
            while not self._pending:
                if self._stopping:
                    return None
                self._cond.wait()
            first = self._pending[0]
            deadline = first.arrived_s + self.max_wait_s
            while not self._stopping and self._ready_items(first.shape) < self.max_batch:
                left = deadline - self.clock()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._pending and self._pending[0] is first:
                break  # else another dispatcher took it while this one waited: start over
        batch, items, nbytes, header = [], 0, 0, len(CAMERA_IDS_ATTRIBUTE) + 1 + len(REPORT_INPUT_SIZE)
        for request in list(self._pending):
            if request.shape != first.shape:
                continue
            more = len(request.items)
            more_header = len(CAMERA_IDS_SEPARATOR.join([request.camera_id] * more)) + (1 if batch else 0)
            if batch and (
                items + more > self.max_batch
                or nbytes + request.nbytes + NPY_HEADER_BYTES > MAX_PAYLOAD_BYTES
                or header + more_header > MAX_CUSTOM_ATTRIBUTES_CHARS
            ):
                break
            batch.append(request)
            self._pending.remove(request)
            items, nbytes, header = items + more, nbytes + request.nbytes, header + more_header
        return batch

    def _ready_items(self, shape: tuple[int, ...]) -> int:
        return sum(len(request.items) for request in self._pending if request.shape == shape)

    def _call(self, batch: list[_Request]) -> None:
        cameras = [request.camera_id for request in batch for _ in request.items]
        items = [item for request in batch for item in request.items]
        window = batch[0].window
        try:
            response = self._send(items, window, custom_attributes(cameras))
            if len(response.results) != len(items):
                raise DetectorError(f"endpoint answered {len(response.results)} results for {len(items)} items")
        except (DetectorError, WindowMismatch) as exc:  # every caller gets it; the dispatcher goes on
            if isinstance(exc, WindowMismatch):
                self.temporal_window = exc.window
                self.input_size = exc.input_size or self.input_size
            self._fail(batch, exc)
            return
        except Exception as exc:  # a bug must not leave callers waiting
            logger.exception("batched call failed cameras=%s", sorted(set(cameras)))
            self._fail(batch, DetectorError(f"batched call failed: {exc}"))
            return
        finally:
            with self._cond:
                self.calls += 1
                self.items_sent += len(items)
        self.temporal_window = response.temporal_window
        self.input_size = response.input_size or self.input_size
        mixed = len(set(cameras)) > 1
        start = 0
        for request in batch:
            results = response.results[start : start + len(request.items)]
            start += len(request.items)
            threshold = response.threshold
            if mixed:  # the endpoint named each item's camera threshold (an older one: the global)
                threshold = results[0].threshold if results[0].threshold is not None else response.threshold
            request.finish(response.model_copy(update={"results": results, "threshold": threshold}))

    @staticmethod
    def _fail(batch: list[_Request], error: Exception) -> None:
        for request in batch:
            request.finish(error=error)


class CameraDetector(TemporalDetector):
    """One camera's detector in fleet mode: its own temporal history and window discovery
    (`TemporalDetector`); its calls go out with the other cameras' through the `BatchingDetector`."""

    def __init__(self, batcher: BatchingDetector, *, camera_id: str, max_side: int | None = None) -> None:
        super().__init__(
            batcher.endpoint_name, camera_id=camera_id, max_side=max_side, temporal_window=batcher.temporal_window,
            input_size=batcher.input_size,
        )
        self.batcher = batcher

    def _invoke_items(self, items: list[np.ndarray], window: int) -> InferenceResponse:
        return self.batcher.submit(self.camera_id, items, window)


def build_batching_detector(
    endpoint_name: str, *, max_batch: int, max_wait_s: float, max_attempts: int = 4, retry_base_s: float = 0.1
) -> BatchingDetector:
    """The production wiring: one `EndpointClient` (one boto3 client) for every camera of the process."""
    endpoint = EndpointClient(endpoint_name, max_attempts=max_attempts, retry_base_s=retry_base_s)
    return BatchingDetector(endpoint.score, endpoint_name=endpoint_name, max_batch=max_batch, max_wait_s=max_wait_s)
