"""SageMakerDetector against the real local inference server (`python -m inference.serve`) holding a
temporal model: it discovers the model's window, sends windows of the sampled frames (the frames the
motion gate held back included), pads the start of a stream, and talks to a frame model unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from inference_artifacts import write_first_to_last_artifact
from local_inference_server import serving
from worker_fake_endpoint import FakeEndpoint

from worker.detector import SageMakerDetector

WINDOW = 3


@pytest.fixture(scope="module")
def temporal_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local inference server on a free port with a temporal_window=3 artifact; its base URL."""
    model_dir = write_first_to_last_artifact(
        tmp_path_factory.mktemp("temporal-model"), WINDOW, model_version="window-3", threshold=50.0
    )
    with serving(model_dir, model_dir / "server.log") as url:
        yield url


@pytest.fixture
def detector(temporal_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> SageMakerDetector:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", temporal_endpoint)
    return SageMakerDetector("vigil-detector", camera_id="cam-1", max_attempts=1)


def grey(value: int) -> np.ndarray:
    return np.full((8, 8, 3), value, dtype=np.uint8)


def test_window_is_discovered_and_holds_the_sampled_frames_the_gate_held_back(detector: SageMakerDetector):
    # GIVEN sampled frames 10, 20 held back by the motion gate, then 60 and 100 sent for scoring
    frames = [grey(10), grey(20), grey(60), grey(100)]
    for frame, scored in zip(frames, [False, False, True, True], strict=True):
        detector.observe(frame, scored=scored)

    # WHEN the two scored frames go to an endpoint whose model declares temporal_window=3
    response = detector.detect(frames[2:])

    # THEN the detector learnt the window from the endpoint, and each frame was scored in the window of
    # the 3 sampled frames ending with it: |60 - 10| and |100 - 20|
    assert detector.temporal_window == WINDOW
    assert (response.temporal_window, [r.score for r in response.results]) == (WINDOW, [50.0, 80.0])


def test_start_of_a_stream_repeats_the_oldest_frame_and_unobserved_frames_still_get_history(
    detector: SageMakerDetector,
):
    # GIVEN a detector that knows the window, and frames it was never told about (no observe)
    detector.detect([grey(0)])  # discovery; frame 0 is now history

    # WHEN frames are scored one call at a time
    scores = [detector.detect([grey(v)]).results[0].score for v in (30, 90, 120)]

    # THEN each is scored against the frame two samples earlier, the first ones padded with the oldest
    assert scores == [30.0, 90.0, 90.0]


def test_a_resolution_change_restarts_the_history(detector: SageMakerDetector):
    detector.detect([grey(0), grey(40)])
    bigger = np.full((16, 16, 3), 200, dtype=np.uint8)
    assert detector.detect([bigger]).results[0].score == 0.0  # only itself in its window


def test_a_frame_model_gets_single_frames(fake_endpoint: FakeEndpoint):
    # GIVEN the fake endpoint (a frame model: it answers temporal_window 1)
    detector = SageMakerDetector("vigil-detector", camera_id="cam-1")
    for value in (10, 20):
        detector.observe(grey(value), scored=False)

    # WHEN two frames are scored
    detector.detect([grey(30), grey(40)])

    # THEN one probe of one frame, then plain N x H x W x 3 batches
    assert detector.temporal_window == 1
    assert [r["shape"] for r in fake_endpoint.requests] == [(1, 8, 8, 3), (1, 8, 8, 3)]
