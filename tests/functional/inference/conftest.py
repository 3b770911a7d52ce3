"""Fixtures for the inference tests: a tiny model trained once per session on a real H.264 clip of
a still scene (`make_video`), and the local server started once on it in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from training.train import get_args_parser, main

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
    """A model dir (model.tar.gz, model.pt, config.json) trained on a still scene, once per session."""
    model_dir = _session_cache["root"] / "model"
    if not (model_dir / "model.tar.gz").exists():
        clip = make_video("normal.mp4", n_frames=40)
        (clip.parent / "manifest.jsonl").write_text(
            json.dumps({"source-ref": clip.name, "camera_id": CAMERA_ID}) + "\n", encoding="utf-8"
        )
        argv = ["--train", str(clip.parent), "--model-dir", str(model_dir), "--model-version", TINY_MODEL_VERSION]
        main(get_args_parser().parse_args([*argv, "--epochs", "8", "--input-size", "48", "80"]))
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
