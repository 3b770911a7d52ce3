"""Two cameras' frames in shared InvokeEndpoint calls to the real local inference server
(`python -m inference.serve`) holding a temporal model with per-camera thresholds: each camera's
windows hold its own frames only, and each gets its own scores and its own calibrated threshold."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
from inference_artifacts import write_first_to_last_artifact
from local_inference_server import serving

from worker.batching import BatchingDetector, build_batching_detector

WINDOW = 3
THRESHOLDS = {"cam-a": 15.0, "cam-b": 7.0}


@pytest.fixture(scope="module")
def endpoint_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local inference server on a free port: a temporal_window=3 model, thresholds per camera."""
    model_dir = write_first_to_last_artifact(
        tmp_path_factory.mktemp("batched-model"), WINDOW, model_version="window-3", threshold=50.0,
        thresholds=THRESHOLDS,
    )
    with serving(model_dir, model_dir / "server.log") as url:
        yield url


@pytest.fixture
def batcher(endpoint_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[BatchingDetector]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoint_url)
    # batches of 2 with a long wait: a call goes out when both cameras have a frame in
    batcher = build_batching_detector("vigil-detector", max_batch=2, max_wait_s=5.0, max_attempts=1)
    batcher.start()
    yield batcher
    batcher.stop()


def grey(value: int) -> np.ndarray:
    return np.full((8, 8, 3), value, dtype=np.uint8)


def test_two_cameras_share_calls_and_keep_their_own_windows_and_thresholds(batcher: BatchingDetector):
    # GIVEN two cameras, each with its own detector, brightening and darkening respectively
    frames = {"cam-a": [grey(10 * i) for i in range(4)], "cam-b": [grey(200 - 5 * i) for i in range(4)]}
    detectors = {camera: batcher.for_camera(camera) for camera in frames}
    answers: dict[str, list[tuple[float, float | None]]] = {camera: [] for camera in frames}

    def analyse(camera: str) -> None:  # an analyser thread: one frame per call, in order
        for image in frames[camera]:
            detectors[camera].observe(image, scored=True)
            response = detectors[camera].detect([image])
            answers[camera] += [(result.score, response.threshold) for result in response.results]

    # WHEN both analysers run at once
    threads = [threading.Thread(target=analyse, args=(camera,)) for camera in frames]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # THEN every call carried one frame of each camera: the discovery call (refused with the
    # model's window) and four scoring calls, 10 items in 5 calls instead of 10 calls
    assert (batcher.calls, batcher.items_sent) == (5, 10)
    # AND each frame was scored in a window of its own camera's frames, |last - first| with the
    # start padded, and came back with its camera's calibrated threshold
    assert answers == {
        "cam-a": [(0.0, 15.0), (10.0, 15.0), (20.0, 15.0), (20.0, 15.0)],
        "cam-b": [(0.0, 7.0), (5.0, 7.0), (10.0, 7.0), (10.0, 7.0)],
    }
    assert {camera: detector.temporal_window for camera, detector in detectors.items()} == {
        "cam-a": WINDOW, "cam-b": WINDOW
    }
