"""Real 1280 x 720 H.264 footage scored through the real local inference server
(`python -m inference.serve`) holding a temporal model of 6 frames that looks at 64 x 96 greyscale:
the worker learns the model's size from the endpoint, sends every window at 228 x 128 (a small part
of SageMaker's 6 MB; a 960 x 540 window of 6 frames, what it sent before, is 9.3 MB and could never
be sent), and the scores and regions are what the model gives on the full-resolution frames."""

from __future__ import annotations

import io
import json
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import boto3
import numpy as np
import pytest
import torch
from local_inference_server import serving

from contracts.inference import MAX_PAYLOAD_BYTES
from worker.batching import BatchingDetector
from worker.detector import EndpointClient, SageMakerDetector

WINDOW = 6
INPUT_SIZE = (64, 96)
THRESHOLD = 2.0  # the intruder scores about 4 grey levels, the empty room (H.264 noise) under 0.2


class GreyChange(torch.nn.Module):
    """A temporal model (uint8 N x T x H x W x 3, any H x W) that looks, as the real one does, at 64 x 96
    greyscale (antialiased resize): per 8 x 8 block, the mean |last frame - mean of the frames before|;
    the score is the largest block."""

    def __init__(self) -> None:
        super().__init__()
        self.height, self.width = INPUT_SIZE

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, t = windows.shape[0], windows.shape[1]
        x = windows.reshape(n * t, windows.shape[2], windows.shape[3], 3).permute(0, 3, 1, 2).float()
        x = torch.nn.functional.interpolate(
            x, size=(self.height, self.width), mode="bilinear", align_corners=False, antialias=True
        )
        grey = (x[:, 0] * 0.299 + x[:, 1] * 0.587 + x[:, 2] * 0.114).reshape(n, t, self.height, self.width)
        change = (grey[:, -1] - grey[:, :-1].mean(dim=1)).abs()
        maps = torch.nn.functional.avg_pool2d(change.unsqueeze(1), kernel_size=8, stride=8).squeeze(1)
        return maps.flatten(1).amax(dim=1), maps


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tmp_path_factory.mktemp("grey-change-model")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.*deprecated", category=FutureWarning)
        torch.jit.script(GreyChange()).save(str(model_dir / "model.pt"))
    (model_dir / "config.json").write_text(json.dumps({
        "model_version": "grey-change-6", "input_size": list(INPUT_SIZE), "temporal_window": WINDOW,
        "threshold": THRESHOLD, "region_threshold": THRESHOLD / 2,
    }))
    return model_dir


@pytest.fixture(scope="module")
def endpoint_url(model_dir: Path) -> Iterator[str]:
    """The local inference server on a free port holding the 6-frame, 64 x 96 model."""
    with serving(model_dir, model_dir / "server.log") as url:
        yield url


class RecordingClient:
    """The real boto3 sagemaker-runtime client, recording each request's body size and array shape."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.requests: list[tuple[int, tuple[int, ...]]] = []
        self.lock = threading.Lock()

    def invoke_endpoint(self, **kwargs: Any) -> Any:
        with self.lock:
            self.requests.append((len(kwargs["Body"]), np.load(io.BytesIO(kwargs["Body"])).shape))
        return self.client.invoke_endpoint(**kwargs)


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def expected_scores(model_dir: Path, frames: list[np.ndarray]) -> tuple[list[float], list[np.ndarray]]:
    """What the model gives on the full-resolution windows (the start padded with the oldest frame)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.*deprecated", category=FutureWarning)
        module = torch.jit.load(str(model_dir / "model.pt"))
    scores, maps = [], []
    for i in range(len(frames)):
        window = frames[max(0, i - WINDOW + 1) : i + 1]
        window = [window[0]] * (WINDOW - len(window)) + window
        with torch.inference_mode():
            score, block_map = module(torch.from_numpy(np.stack(window))[None])
        scores.append(float(score[0]))
        maps.append(block_map[0].numpy())
    return scores, maps


def test_720p_windows_of_6_go_at_the_models_size_and_score_as_on_the_full_frames(
    endpoint_url: str, model_dir: Path, make_video: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
):
    # GIVEN real 1280 x 720 H.264 frames of a room an intruder walks into, and a camera's detector with
    # the default inference_max_side (960) on the endpoint of a 6-frame model that looks at 64 x 96
    frames = decode(make_video("cam-720p.mp4", n_frames=10, height=720, width=1280, intruder=(4, 9)))
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoint_url)
    detector = SageMakerDetector("vigil-detector", camera_id="cam-1", max_side=960, max_attempts=1)
    recorder = RecordingClient(detector.endpoint.client)
    detector.endpoint.client = recorder

    # WHEN the reader observes each frame and the analyser scores it, one at a time
    results = []
    for image in frames:
        detector.observe(image, scored=True)
        results += detector.detect([image]).results

    # THEN the model's window and size were learnt from the endpoint's refusal of the first frame (sent
    # at 960 x 540), and every window since went at 228 x 128: 525 KB, far under the 6 MB limit
    assert (detector.temporal_window, detector.input_size) == (WINDOW, INPUT_SIZE)
    assert [shape for _, shape in recorder.requests] == [(1, 540, 960, 3)] + [(1, WINDOW, 128, 228, 3)] * 10
    assert all(size < MAX_PAYLOAD_BYTES / 10 for size, _ in recorder.requests[1:])
    # AND the scores are what the model gives on the full-resolution windows (grey levels, 0..255)
    scores, maps = expected_scores(model_dir, frames)
    assert [result.score for result in results] == pytest.approx(scores, rel=0.02, abs=0.25)
    assert max(scores[:4]) < THRESHOLD < min(scores[4:])
    # AND the regions are in 0..1 of the frame: they box the intruder in the full-resolution frame
    # (frame 9: a 30 x 50 block at x 1240, y 240), where the model's own map is highest
    region = results[9].regions[0]
    assert region.x * 1280 <= 1240 and (region.x + region.w) * 1280 >= 1240 + 30
    assert region.y * 720 <= 240 and (region.y + region.h) * 720 >= 240 + 50
    best_row, best_col = np.unravel_index(np.argmax(maps[9]), maps[9].shape)
    assert region.x <= (best_col + 0.5) / maps[9].shape[1] <= region.x + region.w
    assert region.y <= (best_row + 0.5) / maps[9].shape[0] <= region.y + region.h


def test_720p_and_1080p_cameras_share_calls_at_the_models_size(endpoint_url: str, model_dir: Path,
                                                                 make_video: Callable[..., Path]):
    # GIVEN a 720p and a 1080p camera sharing calls (fleet mode), batches of up to 2
    frames = {
        "cam-720p": decode(make_video("a.mp4", n_frames=4, height=720, width=1280, intruder=(1, 3))),
        "cam-1080p": decode(make_video("b.mp4", n_frames=4, height=1080, width=1920, intruder=(2, 3))),
    }
    endpoint = EndpointClient(
        "vigil-detector", max_attempts=1, client=boto3.client("sagemaker-runtime", endpoint_url=endpoint_url)
    )
    recorder = RecordingClient(endpoint.client)
    endpoint.client = recorder
    batcher = BatchingDetector(endpoint.score, endpoint_name="vigil-detector", max_batch=2, max_wait_s=5.0)
    batcher.start()
    detectors = {camera: batcher.for_camera(camera, max_side=960) for camera in frames}
    scores: dict[str, list[float]] = {camera: [] for camera in frames}

    def analyse(camera: str) -> None:
        for image in frames[camera]:
            detectors[camera].observe(image, scored=True)
            scores[camera] += [result.score for result in detectors[camera].detect([image]).results]

    # WHEN both analysers run at once
    threads = [threading.Thread(target=analyse, args=(camera,)) for camera in frames]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    batcher.stop()

    # THEN after the discovery call (one 960 x 540 frame each: both 16:9 at the same bound) both cameras'
    # windows are 228 x 128, so every call carried one window of each
    assert [shape for _, shape in recorder.requests] == [(2, 540, 960, 3)] + [(2, WINDOW, 128, 228, 3)] * 4
    assert all(size < MAX_PAYLOAD_BYTES / 5 for size, _ in recorder.requests[1:])
    # AND each camera's scores are the model's on its own full-resolution frames
    for camera, camera_frames in frames.items():
        assert scores[camera] == pytest.approx(expected_scores(model_dir, camera_frames)[0], rel=0.02, abs=0.25)
