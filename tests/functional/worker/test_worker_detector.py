"""SageMakerDetector over real HTTP to the fake endpoint: the request it sends, batching, scaling,
retries on 5xx, and no retries on client errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from worker_fake_endpoint import MODEL_VERSION, FakeEndpoint, darkness

from contracts.inference import InferenceResponse
from worker.detector import DetectorError, SageMakerDetector
from worker.sources import AvSource


@pytest.fixture
def frames(make_video: Callable[..., Path]) -> list:
    """Real decoded frames: 0 and 1 show an empty room, 2 the intruder."""
    source = AvSource(str(make_video("clip.mp4", 30, intruder=(20, 29))), sample_fps=1.0, speed=0.0)
    with source:
        return [frame.image for frame in source.frames()]


def test_frames_are_sent_as_one_npy_batch_and_scored_in_order(fake_endpoint: FakeEndpoint, frames: list):
    # GIVEN a detector for camera cam-1 of a frame model and three decoded frames
    detector = SageMakerDetector("vigil-detector", camera_id="cam-1", temporal_window=1)

    # WHEN scored
    response = detector.detect(frames)

    # THEN one InvokeEndpoint with the SageMaker runtime's headers (asking for the model's input size), and
    # one result per frame, in order
    assert response == InferenceResponse(
        model_version=MODEL_VERSION, threshold=1.0, results=[darkness(frame) for frame in frames]
    )
    assert [r.score > 1.0 for r in response.results] == [False, False, True]
    [request] = fake_endpoint.requests
    assert {
        key: request[key] for key in ("endpoint", "content_type", "accept", "custom_attributes", "shape")
    } == {
        "endpoint": "vigil-detector",
        "content_type": "application/x-npy",
        "accept": "application/json",
        "custom_attributes": "camera_id=cam-1,report_input_size=1",
        "shape": (3, 144, 256, 3),
    }


def test_frames_larger_than_max_side_are_scaled_down(fake_endpoint: FakeEndpoint, frames: list):
    detector = SageMakerDetector("vigil-detector", camera_id="cam-1", max_side=128)

    detector.detect(frames[:1])

    assert fake_endpoint.requests[0]["shape"] == (1, 72, 128, 3)


def test_5xx_is_retried_with_backoff(fake_endpoint: FakeEndpoint, frames: list):
    # GIVEN an endpoint that answers 503 twice
    fake_endpoint.fail_next = 2
    detector = SageMakerDetector("vigil-detector", camera_id="cam-1", max_attempts=3, retry_base_s=0.01)

    # WHEN scored
    response = detector.detect(frames[:1])

    # THEN the third attempt succeeds
    assert len(fake_endpoint.requests) == 3
    assert detector.retries == 2
    assert response.results == [darkness(frames[0])]


def test_gives_up_after_max_attempts(fake_endpoint: FakeEndpoint, frames: list):
    fake_endpoint.fail_next = 10
    detector = SageMakerDetector("vigil-detector", camera_id="cam-1", max_attempts=3, retry_base_s=0.01)

    with pytest.raises(DetectorError, match="failed 3 attempts"):
        detector.detect(frames[:1])

    assert len(fake_endpoint.requests) == 3


def test_client_errors_are_not_retried(fake_endpoint: FakeEndpoint, frames: list):
    fake_endpoint.fail_next, fake_endpoint.fail_status = 1, 415
    detector = SageMakerDetector("vigil-detector", camera_id="cam-1", max_attempts=3, retry_base_s=0.01)

    with pytest.raises(DetectorError, match="endpoint vigil-detector"):
        detector.detect(frames[:1])

    assert len(fake_endpoint.requests) == 1


def test_an_unreachable_endpoint_fails_after_retries(monkeypatch: pytest.MonkeyPatch, frames: list):
    from local.stack import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{free_port()}")
    detector = SageMakerDetector("vigil-detector", camera_id="cam-1", max_attempts=2, retry_base_s=0.01)

    with pytest.raises(DetectorError, match="failed 2 attempts"):
        detector.detect(frames[:1])
