"""`make bench-inference`: the endpoint's throughput against the model's own (issue 5).

In one run, on the same model and the same frames (decoded from the bundled sample video):
- baseline: raw model forward in-process (`inference.scoring.Scoring`: the OpenCV inputs, then the module, under
  `torch.inference_mode`) at batch 1, 8, 32;
- end to end: `POST /invocations` over HTTP to `python -m inference.serve` (keep-alive client, one
  request at a time, TCP_NODELAY as boto3 sets it) with `application/x-npy` at batch 1, 8, 32, with `image/jpeg` (one frame per
  request), and with `application/json` carrying JPEGs at batch 8 and 32.
Prints each throughput (items/s, from the median latency) and its ratio to the raw forward at the same batch, p50/p99 latency
at batch 1, where each request's time goes (the server's `Server-Timing` phases, the rest is network and HTTP),
and writes bench/results/inference.json. Goals (issue 20): /invocations npy at batch 32 >= 0.9 x raw; at
batch 1 at most 5 ms over the raw forward.

The model: `--model model.tar.gz`, else one trained here on the sample's first 5 s with
`python -m training` (1 epoch: the architecture is the production one, the weights do not matter
for speed). Frames are scaled so that a batch of 32 items fits SageMaker's 6 MB payload limit, as the
worker's `inference_max_side` does. Server and baseline use the same torch thread count.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import torch
from PIL import Image

from contracts.inference import MAX_PAYLOAD_BYTES
from inference import env
from inference.inference import model_fn
from inference.scoring import Scoring
from inference.serve import SERVER_TIMING_HEADER

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "local" / "sample" / "one-by-one-person-detection.mp4"
RESULT = REPO_ROOT / "bench" / "results" / "inference.json"
BATCHES = (1, 8, 32)
GOAL = 0.9
OVERHEAD_GOAL_MS = 5.0  # /invocations p50 - raw forward p50 at batch 1
ROUNDS = 3


def decode_frames(video: Path, count: int, start_s: float = 6.0) -> np.ndarray:
    """`count` RGB frames from `start_s` on."""
    frames = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time < start_s:
                continue
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return np.stack(frames)


def fit_batch_limit(frames: np.ndarray, items: int, window: int) -> np.ndarray:
    """Frames scaled down so that `items` x `window` of them fit the payload limit as one npy body."""
    h, w = frames.shape[1:3]
    budget = (MAX_PAYLOAD_BYTES - 4096) / (items * window * 3)
    scale = min(1.0, (budget / (h * w)) ** 0.5)
    size = (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2)
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def train_model(workdir: Path) -> Path:
    """A model.tar.gz trained for one epoch on the sample's first 5 s (python -m training's defaults)."""
    from training.train import get_args_parser, main

    channel = workdir / "train"
    channel.mkdir()
    (channel / SAMPLE.name).symlink_to(SAMPLE)
    (channel / "manifest.jsonl").write_text(json.dumps({"source-ref": SAMPLE.name, "camera_id": "bench"}) + "\n")
    parser = get_args_parser()
    argv = ["--train", str(channel), "--model-dir", str(workdir / "model"), "--epochs", "1", "--model-version", "bench"]
    if "--max-frames-per-clip" in parser._option_string_actions:
        argv += ["--max-frames-per-clip", "50"]
    print("==> training a model for the benchmark (python -m training, 1 epoch on the sample's first 5 s)", flush=True)
    main(parser.parse_args(argv))
    return workdir / "model" / "model.tar.gz"


def items_for(frames: np.ndarray, batch: int, window: int) -> np.ndarray:
    """`batch` items: frames (window 1) or windows of consecutive frames, oldest first."""
    if window == 1:
        return np.ascontiguousarray(frames[:batch])
    return np.stack([frames[i : i + window] for i in range(batch)])


def timed(call, seconds: float, min_runs: int = 5) -> list[float]:
    """Latencies (s) of repeated `call()` for about `seconds`, after warm-up calls (TorchScript's profiling
    executor specialises a graph for an input shape over its first runs)."""
    for _ in range(3):
        call()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(latencies) < min_runs:
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    return latencies


def summary(latencies: list[float], batch: int) -> dict:
    ordered = sorted(latencies)
    return {
        "batch": batch,
        "requests": len(latencies),
        # from the median latency: robust to the stalls other jobs cause on a shared machine
        "items_per_s": round(batch / statistics.median(ordered), 2),
        "items_per_s_mean": round(batch * len(latencies) / sum(latencies), 2),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 2),
    }


def parse_server_timing(headers: httpx.Headers) -> dict[str, float]:
    """`Server-Timing: decode;dur=0.120, predict;dur=3.1` -> {"decode": 0.12, "predict": 3.1} (ms)."""
    phases = {}
    for entry in headers.get(SERVER_TIMING_HEADER, "").split(","):
        name, _, duration = entry.strip().partition(";dur=")
        if name and duration:
            phases[name] = float(duration)
    return phases


def breakdown(client_p50_ms: float, server: list[dict[str, float]]) -> dict[str, float]:
    """The median of each server phase, and the rest of the client's median: network and HTTP."""
    phases = {name: statistics.median(t.get(name, 0.0) for t in server) for name in (server[0] if server else {})}
    return {**{k: round(v, 3) for k, v in phases.items()},
            "network+http": round(max(0.0, client_p50_ms - sum(phases.values())), 3)}


def npy_body(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def jpeg(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: Path, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "inference.serve", "--model", str(model), "--port", str(port)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, env.VIGIL_TORCH_THREADS: str(threads), env.VIGIL_MAX_BATCH: "64"},
    )
    ready = process.stdout.readline()
    if not ready.startswith("serving model"):
        process.kill()
        raise SystemExit(f"error: the inference server did not start: {ready!r}")
    return process, f"http://127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model.tar.gz to serve (default: train one on the sample)")
    parser.add_argument("--seconds", type=float, default=4.0, help="time per measurement (default: 4)")
    parser.add_argument("--threads", type=int, default=env.TORCH_THREADS,
                        help=f"torch threads, baseline and server alike (default: {env.TORCH_THREADS})")
    parser.add_argument("--out", type=Path, default=RESULT, help=f"results file (default: {RESULT.relative_to(REPO_ROOT)})")
    args = parser.parse_args(argv)
    if argv is None:  # the baseline runs in this process: under the server's malloc settings (inference.env)
        env.with_allocator_tuning("bench.bench_inference", sys.argv[1:])
    logging.basicConfig(level=logging.WARNING)
    cv2.setNumThreads(1)  # OpenCV's idle pool threads must not compete with torch's in the baseline

    with tempfile.TemporaryDirectory(prefix="vigil-bench-inference-") as tmp:
        workdir = Path(tmp)
        archive = args.model or train_model(workdir)
        model_dir = workdir / "unpacked"
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(model_dir, filter="data")
        torch.set_num_threads(args.threads)
        model = model_fn(model_dir)
        torch.set_num_threads(args.threads)
        window, input_size = model.temporal_window, model.input_size
        frames = fit_batch_limit(decode_frames(SAMPLE, max(BATCHES) + window), max(BATCHES), window)
        print(f"==> model {model.model_version} (temporal_window {window}, input {model.input_size}); frames "
              f"{frames.shape[2]}x{frames.shape[1]}; {args.threads} torch threads; {args.seconds:g} s per measurement",
              flush=True)

        raw_calls = {}
        scoring = Scoring(model.module, model.motion)
        for batch in BATCHES:
            tensor = torch.from_numpy(items_for(frames, batch, window))

            def forward(tensor: torch.Tensor = tensor) -> None:
                with torch.inference_mode():
                    scoring(tensor)

            raw_calls[batch] = forward

        server, url = start_server(archive, args.threads)
        raw_latencies: dict[int, list[float]] = {b: [] for b in BATCHES}
        http_latencies: dict[str, list[float]] = {}
        server_phases: dict[str, list[dict[str, float]]] = {}
        try:
            # TCP_NODELAY as boto3 (urllib3) sets it: without it Nagle + delayed ACK add ~40 ms a request
            transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            with httpx.Client(timeout=60, transport=transport) as client:
                def invoke(body: bytes, content_type: str, name: str) -> None:
                    response = client.post(f"{url}/invocations", content=body,
                                           headers={"Content-Type": content_type, "Accept": "application/json"})
                    response.raise_for_status()
                    server_phases.setdefault(name, []).append(parse_server_timing(response.headers))

                cases = [(f"npy_b{b}", b, npy_body(items_for(frames, b, window)), "application/x-npy") for b in BATCHES]
                if window == 1:
                    cases.append(("jpeg_b1", 1, jpeg(frames[0]), "image/jpeg"))
                for b in BATCHES:
                    per_item = [frames[i : i + window] for i in range(b)]
                    body = json.dumps({"instances": [{"frames": [base64.b64encode(jpeg(f)).decode() for f in item]}
                                                     for item in per_item]}).encode()
                    cases.append((f"json_jpeg_b{b}", b, body, "application/json"))
                # Rounds that alternate baseline and server, so that load from other jobs on a shared
                # machine weighs on both alike.
                for _ in range(ROUNDS):
                    for batch in BATCHES:
                        raw_latencies[batch] += timed(raw_calls[batch], args.seconds / ROUNDS)
                    for name, batch, body, content_type in cases:
                        http_latencies.setdefault(name, []).extend(
                            timed(lambda body=body, ct=content_type, name=name: invoke(body, ct, name),
                                  args.seconds / ROUNDS)
                        )
        finally:
            server.terminate()
            server.wait(timeout=30)

        raw = {b: summary(raw_latencies[b], b) for b in BATCHES}
        for b in BATCHES:
            print(f"raw forward      batch {b:>2}: {raw[b]['items_per_s']:8.1f} items/s  p50 {raw[b]['p50_ms']:.1f} ms",
                  flush=True)
        http = {}
        for name, batch, body, _ in cases:
            http[name] = summary(http_latencies[name], batch)
            http[name]["vs_raw"] = round(http[name]["items_per_s"] / raw[batch]["items_per_s"], 3)
            http[name]["body_bytes"] = len(body)
            print(f"/invocations {name:<14}: {http[name]['items_per_s']:8.1f} items/s  "
                  f"x{http[name]['vs_raw']:.2f} of raw  p50 {http[name]['p50_ms']:.1f} ms  "
                  f"p99 {http[name]['p99_ms']:.1f} ms", flush=True)
        print("where a request's time goes (medians, ms; network+http = client p50 - the server's phases):",
              flush=True)
        for name, batch, _, _ in cases:
            http[name]["time_ms"] = breakdown(http[name]["p50_ms"], server_phases.get(name, []))
            print(f"  {name:<14} " + "  ".join(f"{phase} {ms:.2f}" for phase, ms in http[name]["time_ms"].items()),
                  flush=True)

    ratio = http["npy_b32"]["vs_raw"]
    overhead_b1 = round(http["npy_b1"]["p50_ms"] - raw[1]["p50_ms"], 2)
    result = {
        "benchmark": "inference",
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                    "torch_threads": args.threads, "device": "cpu", "load_average": [round(x, 1) for x in os.getloadavg()],
                    "malloc": {name: os.environ.get(name) for name in env.ALLOCATOR_ENV},
                    "note": "2-core machine shared with other jobs: absolute figures are pessimistic"},
        "model": {"temporal_window": window, "model_input_size": list(input_size),
                  "frame_size_hw": list(frames.shape[1:3])},
        "seconds_per_measurement": args.seconds,
        "raw_forward": {f"b{b}": raw[b] for b in BATCHES},
        "invocations": http,
        "p99_ms_batch1": {name: http[name]["p99_ms"] for name in http if name.endswith("_b1")},
        "goal": {"npy_b32_vs_raw_b32": ratio, "bar": GOAL, "met": ratio >= GOAL,
                 "npy_b1_overhead_ms": overhead_b1, "overhead_bar_ms": OVERHEAD_GOAL_MS,
                 "overhead_met": overhead_b1 <= OVERHEAD_GOAL_MS},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"==> /invocations npy batch 32 = x{ratio:.2f} of raw forward (goal >= {GOAL}): "
          f"{'MET' if ratio >= GOAL else 'NOT MET'}; overhead at batch 1 {overhead_b1:.1f} ms (goal <= "
          f"{OVERHEAD_GOAL_MS:g}): {'MET' if overhead_b1 <= OVERHEAD_GOAL_MS else 'NOT MET'}; results in {args.out}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
