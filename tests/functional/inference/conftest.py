"""Fixtures for the inference tests: a tiny scene-difference model (TorchScript, calibrated on a real
H.264 clip of a still scene made with `make_video`; no training, so these tests do not depend on
`training/`), the local server started once on it in a subprocess, and `start_server` for servers
with other artifacts or environments (stopped at the end of the test)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
import torch
from inference_artifacts import build_scene_difference_artifact

REPO_ROOT = Path(__file__).resolve().parents[3]
TINY_MODEL_VERSION = "tiny-test-1"
CAMERA_ID = "cam-1"


def decode(path: Path) -> np.ndarray:
    """Every frame of a video file, uint8 N x H x W x 3 RGB."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    cache: dict = {"root": tmp_path_factory.mktemp("inference-model")}
    yield cache
    server = cache.get("server")
    if server is not None:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def tiny_model_dir(make_video: Callable[..., Path], _session_cache: dict) -> Path:
    """A model dir (model.tar.gz, model.pt, config.json) of `SceneDifference` on a real H.264 clip of the
    empty scene, thresholds calibrated on its frames as training does (max x 1.5), built once per session."""
    model_dir = _session_cache["root"] / "model"
    if not (model_dir / "model.tar.gz").exists():
        normal = decode(make_video("normal.mp4", n_frames=12))
        build_scene_difference_artifact(model_dir, normal, TINY_MODEL_VERSION, CAMERA_ID)
    return model_dir


@pytest.fixture
def scenes(make_video: Callable[..., Path]) -> dict[str, np.ndarray]:
    """Decoded frames of the same scene: 'normal' (empty) and 'intruder' (a block in view throughout)."""
    return {
        "normal": decode(make_video("empty.mp4", n_frames=4)),
        "intruder": decode(make_video("intruder.mp4", n_frames=4, intruder=(0, 3))),
    }


@pytest.fixture
def server_url(tiny_model_dir: Path, _session_cache: dict) -> str:
    """`python -m inference.serve --model <model.tar.gz>` on a free port, started once per session."""
    if "url" not in _session_cache:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "inference.serve", "--model", str(tiny_model_dir / "model.tar.gz"),
             "--port", str(port)],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=(_session_cache["root"] / "server.log").open("w"), text=True,
            env={**os.environ, "VIGIL_MAX_BATCH": "16"},
        )
        _session_cache["server"] = process
        ready = process.stdout.readline()
        assert ready.startswith(f"serving model {TINY_MODEL_VERSION} on http://127.0.0.1:{port}"), ready
        _session_cache["url"] = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while httpx.get(_session_cache["url"] + "/ping").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
    return _session_cache["url"]


def launch(model: Path, log_path: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """`python -m inference.serve --model MODEL` on a free port; returns once it announces itself."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "inference.serve", "--model", str(model), "--port", str(port)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log_path.open("w"), text=True, env={**os.environ, **env},
    )
    ready = process.stdout.readline()
    assert ready.startswith("serving model "), (ready, log_path.read_text())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # worker processes load the model after the announcement
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/ping", timeout=60).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    return process, url


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """`start_server(model_path, **env)` -> base URL; the server's log is `tmp_path/server-N.log`."""
    processes: list[subprocess.Popen] = []

    def _start(model: Path, **env: str) -> str:
        process, url = launch(model, tmp_path / f"server-{len(processes)}.log", **env)
        processes.append(process)
        return url

    yield _start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class FaultyWindowMotion(torch.nn.Module):
    """A temporal model (uint8 N x T x H x W x 3): the mean absolute change from each window's first frame
    to its last, over 4 x 4 blocks. It fails (a RuntimeError, as a model bug would) on a window whose first
    pixel is 13, so a test can make the endpoint hit a server-side failure on purpose."""

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if bool((windows[:, 0, 0, 0, 0] == 13).any()):
            raise RuntimeError("model bug triggered by pixel 13")
        diff = (windows[:, -1].float() - windows[:, 0].float()).abs().mean(dim=3).unsqueeze(1)
        maps = torch.nn.functional.adaptive_avg_pool2d(diff, (4, 4)).squeeze(1)
        return maps.flatten(1).amax(dim=1), maps


@pytest.fixture
def temporal_model_dir(tmp_path: Path) -> Path:
    """A temporal artifact (temporal_window 3, threshold 20) scripted from `FaultyWindowMotion`."""
    model_dir = tmp_path / "temporal-model"
    model_dir.mkdir()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.*deprecated", category=FutureWarning)
        torch.jit.script(FaultyWindowMotion()).save(str(model_dir / "model.pt"))
    config = {"model_version": "temporal-test-1", "input_size": [16, 16], "temporal_window": 3,
              "threshold": 20.0, "region_threshold": 10.0}
    (model_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return model_dir
