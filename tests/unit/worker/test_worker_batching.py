"""The cross-camera batching detector with a fake call: size and wait bounds, payload bound, each
caller's slice and camera threshold, errors to every caller, stop."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from contracts.inference import MAX_PAYLOAD_BYTES, FrameResult, InferenceResponse
from worker.batching import BatchingDetector
from worker.detector import DetectorError, WindowMismatch

THRESHOLDS = {"cam-0": 10.0, "cam-1": 11.0, "cam-2": 12.0, "cam-3": 13.0, "cam-4": 14.0, "cam-5": 15.0}


class FakeEndpoint:
    """Counts calls; scores each item by its first pixel; per-item camera thresholds like the real
    endpoint (`camera_ids`), the camera's threshold for a one-camera call (`camera_id`)."""

    def __init__(self, error: Exception | None = None, delay_s: float = 0.0) -> None:
        self.calls: list[tuple[str, int, int]] = []  # (custom attributes, items, window)
        self.error = error
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def __call__(self, items: list[np.ndarray], window: int, attributes: str) -> InferenceResponse:
        with self.lock:
            self.calls.append((attributes, len(items), window))
        time.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        key, _, value = attributes.partition("=")
        cameras = value.split("|") if key == "camera_ids" else [value] * len(items)
        return InferenceResponse(
            model_version="fake",
            threshold=THRESHOLDS[value] if key == "camera_id" else 99.0,
            temporal_window=window,
            results=[
                FrameResult(score=float(item.flat[0]), threshold=THRESHOLDS[camera] if key == "camera_ids" else None)
                for item, camera in zip(items, cameras, strict=True)
            ],
        )

    def sizes(self) -> list[int]:
        return sorted(size for _, size, _ in self.calls)


def frame(value: int, shape: tuple[int, ...] = (4, 4, 3)) -> np.ndarray:
    return np.full(shape, value, np.uint8)


def submit_together(batcher: BatchingDetector, requests: dict[str, list[np.ndarray]]) -> dict[str, object]:
    """Every camera submits its items from its own thread at the same moment; answer or error by camera."""
    barrier = threading.Barrier(len(requests))

    def one(camera: str) -> object:
        barrier.wait()
        try:
            response = batcher.submit(camera, requests[camera], window=1)
        except (DetectorError, WindowMismatch) as exc:
            return exc
        return ([result.score for result in response.results], response.threshold)

    with ThreadPoolExecutor(len(requests)) as pool:
        return dict(zip(requests, pool.map(one, requests), strict=True))


@pytest.fixture
def endpoint() -> FakeEndpoint:
    return FakeEndpoint()


def running(send, **settings) -> BatchingDetector:  # type: ignore[no-untyped-def]
    batcher = BatchingDetector(send, endpoint_name="fake", **settings)
    batcher.start()
    return batcher


def test_a_full_batch_goes_out_at_once_and_each_camera_gets_its_slice(endpoint):
    # GIVEN a dispatcher that would wait 10 s to fill a batch of 4
    batcher = running(endpoint, max_batch=4, max_wait_s=10.0)

    # WHEN four cameras submit one frame each at the same moment
    started = time.monotonic()
    answers = submit_together(batcher, {f"cam-{i}": [frame(i)] for i in range(4)})
    elapsed_s = time.monotonic() - started
    batcher.stop()

    # THEN one call carried all four, without waiting for the wait bound, and each camera got its
    # own score and its own calibrated threshold
    assert endpoint.sizes() == [4]
    assert elapsed_s < 5.0
    assert answers == {f"cam-{i}": ([float(i)], THRESHOLDS[f"cam-{i}"]) for i in range(4)}
    assert (batcher.calls, batcher.items_sent) == (1, 4)


def test_more_frames_than_max_batch_go_out_in_several_calls(endpoint):
    # GIVEN batches of at most 4 frames
    batcher = running(endpoint, max_batch=4, max_wait_s=0.2)

    # WHEN six cameras submit one frame each at once
    answers = submit_together(batcher, {f"cam-{i}": [frame(i)] for i in range(6)})
    batcher.stop()

    # THEN two calls (4 + 2), and every camera still has its own answer
    assert endpoint.sizes() == [2, 4]
    assert answers == {f"cam-{i}": ([float(i)], THRESHOLDS[f"cam-{i}"]) for i in range(6)}


def test_a_lone_frame_waits_at_most_max_wait(endpoint):
    # GIVEN batches of up to 8 frames, waiting at most 100 ms to fill
    batcher = running(endpoint, max_batch=8, max_wait_s=0.1)

    # WHEN one camera submits two frames and nobody else does
    started = time.monotonic()
    response = batcher.submit("cam-1", [frame(7), frame(9)], window=1)
    elapsed_s = time.monotonic() - started
    batcher.stop()

    # THEN the call went out alone once the wait bound passed, named by its one camera
    assert endpoint.calls == [("camera_id=cam-1", 2, 1)]
    assert 0.09 <= elapsed_s < 2.0
    assert response == InferenceResponse(
        model_version="fake", threshold=11.0, results=[FrameResult(score=7.0), FrameResult(score=9.0)]
    )


def test_a_batch_stays_under_the_payload_limit(endpoint):
    # GIVEN frames of 2.5 MB each: two fit in 6 MB, three do not
    big = (1024, 1024 * 5 // 6, 3)
    batcher = running(endpoint, max_batch=8, max_wait_s=0.2)

    # WHEN three cameras submit one each at once
    answers = submit_together(batcher, {f"cam-{i}": [frame(i, big)] for i in range(3)})
    batcher.stop()

    # THEN two calls (2 + 1), none over the limit
    assert 2 * frame(0, big).nbytes < MAX_PAYLOAD_BYTES < 3 * frame(0, big).nbytes
    assert endpoint.sizes() == [1, 2]
    assert answers == {f"cam-{i}": ([float(i)], THRESHOLDS[f"cam-{i}"]) for i in range(3)}


def test_items_of_different_shapes_never_share_a_call(endpoint):
    # GIVEN two cameras at one resolution and one at another
    batcher = running(endpoint, max_batch=8, max_wait_s=0.2)

    # WHEN all three submit at once
    answers = submit_together(
        batcher, {"cam-0": [frame(0)], "cam-1": [frame(1)], "cam-2": [frame(2, (6, 8, 3))]}
    )
    batcher.stop()

    # THEN two calls: the pair of one shape, the other alone
    cameras_per_call = sorted(sorted(attributes.partition("=")[2].split("|")) for attributes, _, _ in endpoint.calls)
    assert cameras_per_call == [["cam-0", "cam-1"], ["cam-2"]]
    assert answers == {f"cam-{i}": ([float(i)], THRESHOLDS[f"cam-{i}"]) for i in range(3)}


def test_a_failed_call_fails_every_caller_and_the_dispatcher_goes_on():
    # GIVEN an endpoint that fails
    endpoint = FakeEndpoint(error=DetectorError("endpoint vigil-detector failed 4 attempts, last: throttled"))
    batcher = running(endpoint, max_batch=3, max_wait_s=0.2)

    # WHEN three cameras submit at once, then the endpoint recovers and one submits again
    answers = submit_together(batcher, {f"cam-{i}": [frame(i)] for i in range(3)})
    endpoint.error = None
    after = batcher.submit("cam-0", [frame(5)], window=1)
    batcher.stop()

    # THEN each of the three got the same DetectorError from the one call; the next call worked
    assert {camera: str(answer) for camera, answer in answers.items()} == {
        f"cam-{i}": "endpoint vigil-detector failed 4 attempts, last: throttled" for i in range(3)
    }
    assert endpoint.sizes() == [1, 3]
    assert [result.score for result in after.results] == [5.0]


def test_a_bug_in_the_call_reaches_callers_as_a_detector_error():
    # GIVEN a call that breaks with something other than a DetectorError
    batcher = running(FakeEndpoint(error=KeyError("Body")), max_batch=2, max_wait_s=0.0)

    # WHEN a camera submits
    with pytest.raises(DetectorError) as raised:
        batcher.submit("cam-0", [frame(0)], window=1)
    batcher.stop()

    # THEN it gets a DetectorError naming the cause
    assert str(raised.value) == "batched call failed: 'Body'"


def test_a_window_mismatch_reaches_every_caller_and_is_remembered():
    # GIVEN an endpoint whose model scores windows of 3 (its 400 names the window)
    batcher = running(FakeEndpoint(error=WindowMismatch(3)), max_batch=2, max_wait_s=0.2)

    # WHEN two cameras send single frames
    answers = submit_together(batcher, {"cam-0": [frame(0)], "cam-1": [frame(1)]})
    batcher.stop()

    # THEN both get the mismatch (each camera's detector then switches to windows), and cameras
    # that join later start with the window
    assert {camera: (type(error).__name__, error.window) for camera, error in answers.items()} == {
        "cam-0": ("WindowMismatch", 3), "cam-1": ("WindowMismatch", 3)
    }
    assert batcher.for_camera("cam-9").temporal_window == 3


def test_stop_sends_what_is_pending_at_once_and_refuses_more(endpoint):
    # GIVEN a dispatcher that would wait 10 s to fill a batch, and one frame waiting in it
    batcher = running(endpoint, max_batch=8, max_wait_s=10.0)
    answer: list[object] = []
    caller = threading.Thread(target=lambda: answer.append(batcher.submit("cam-1", [frame(3)], window=1)))
    caller.start()
    while not batcher._pending:
        time.sleep(0.005)

    # WHEN the worker stops (SIGTERM)
    started = time.monotonic()
    batcher.stop()
    caller.join(5)
    elapsed_s = time.monotonic() - started

    # THEN the waiting frame went out at once and was answered; a later submit fails at once
    assert elapsed_s < 5.0
    assert [[r.score for r in response.results] for response in answer] == [[3.0]]
    with pytest.raises(DetectorError, match="batching detector is not running camera=cam-1"):
        batcher.submit("cam-1", [frame(4)], window=1)
    assert endpoint.sizes() == [1]


def test_stop_with_a_call_in_flight_answers_it_before_returning():
    # GIVEN a slow endpoint and a call on its way
    endpoint = FakeEndpoint(delay_s=0.3)
    batcher = running(endpoint, max_batch=1, max_wait_s=0.0)
    answer: list[object] = []
    caller = threading.Thread(target=lambda: answer.append(batcher.submit("cam-2", [frame(6)], window=1)))
    caller.start()
    while not endpoint.calls:
        time.sleep(0.005)

    # WHEN stopped mid-call
    batcher.stop()
    caller.join(5)

    # THEN stop waited for the call, and the caller has its answer (nobody left waiting)
    assert not caller.is_alive()
    assert [[r.score for r in response.results] for response in answer] == [[6.0]]


def test_a_stalled_call_holds_up_only_the_cameras_in_it():
    # GIVEN an endpoint whose call for cam-0 hangs (a retried, timing-out InvokeEndpoint) until released
    entered, release = threading.Event(), threading.Event()
    endpoint = FakeEndpoint()

    def send(items, window, attributes):  # type: ignore[no-untyped-def]
        if attributes == "camera_id=cam-0":
            entered.set()
            release.wait(10)
        return endpoint(items, window, attributes)

    batcher = running(send, max_batch=1, max_wait_s=0.0)
    stalled: list[object] = []
    caller = threading.Thread(target=lambda: stalled.append(batcher.submit("cam-0", [frame(0)], window=1)))
    caller.start()
    assert entered.wait(5)

    # WHEN other cameras submit while that call is out
    started = time.monotonic()
    answers = [batcher.submit(f"cam-{i}", [frame(i)], window=1) for i in (1, 2, 3)]
    elapsed_s = time.monotonic() - started

    # THEN they are answered at once, in calls of their own; the stalled camera when its call returns
    assert [[r.score for r in answer.results] for answer in answers] == [[1.0], [2.0], [3.0]]
    assert elapsed_s < 5.0 and not stalled
    release.set()
    caller.join(5)
    batcher.stop()
    assert [[r.score for r in answer.results] for answer in stalled] == [[0.0]]
