"""Worker throughput on KVS video: 720p H.264, 30 fps, 1 s GOP, made in the run.

Baselines (raw PyAV decoding of the same packets, measured in the same run): every frame, and
keyframes only, each keyframe decoded and converted to a full-resolution RGB array (the baseline of
the goal, as a decoding loop that hands out images does); for reference, also keyframes decoded and
not converted (the decoder alone, a bound the worker cannot reach: it decodes the same keyframes,
then reads, gates and analyses; it converts only small images, so it can beat the baseline).
The worker: the same video as KVS GetMedia fragments over real HTTP (the local KVS twin), read by
`KvsSource` -> motion gate -> queue -> analyser with a constant-responder detector, at 1 fps.
Prints throughput in video seconds per wall second, the ratio of the worker to the keyframe-only
baseline (goal >= 0.8), and the cameras one core sustains in real time at 1 fps (video seconds per
CPU second of the worker process; goal >= 40). Baseline and worker runs alternate and the best of
each is kept (the machine is shared). Then fleet mode's shared calls: N cameras' analysers (one
frame per detect, at the size a 720p frame is sent for the model's input size:
`worker.detector.inference_size`, 228 x 128 for 64 x 96) through one `BatchingDetector` against a
constant responder that takes `ENDPOINT_S` per call, vs. one call per frame: calls per frame and
frames per second. Writes bench/results/worker.json.

    make bench-worker            # or: python bench/bench_worker.py --seconds 60"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import threading
import time
from pathlib import Path

import av
import numpy as np

from contracts.inference import FrameResult, InferenceResponse
from worker.batching import BatchingDetector
from worker.config import FleetBatchConfig, WorkerConfig
from worker.detector import Detector, inference_size
from worker.kvs.local_media import LocalKvsMedia
from worker.kvs.mkv_writer import Packet, VideoTrack, encode_h264, fragments_by_keyframe, get_media_fragment
from worker.kvs.reader import EndpointCache, StartSelector, StartSelectorType
from worker.kvs.source import KvsSource
from worker.pipeline import Worker, WorkerStats
from worker.publisher import AlertPublisher

logger = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parent / "results" / "worker.json"
FPS, WIDTH, HEIGHT = 30, 1280, 720
BASE_NUMBER = 91343852333181432392682062607743920146159300000
CAMERAS, FRAMES_PER_CAMERA, ENDPOINT_S = 8, 30, 0.01
MODEL_INPUT = (64, 96)  # the scene-difference model's input_size (height, width), as its endpoint names it
SENT = inference_size(HEIGHT, WIDTH, input_size=MODEL_INPUT)  # (height, width) a frame is sent at
RUNS = 5  # alternating baseline and worker runs; the best of each is kept


class ConstantResponder(Detector):
    """The model endpoint replaced by a constant answer: what is left is the worker's own cost."""

    def detect(self, images):  # type: ignore[no-untyped-def]
        return InferenceResponse(
            model_version="constant", threshold=1.0, results=[FrameResult(score=0.1) for _ in images]
        )


class NoKinesis:
    def put_records(self, **_: object) -> dict:
        return {"FailedRecordCount": 0, "Records": []}


def make_video(seconds: int) -> tuple[VideoTrack, list[Packet]]:
    """A textured scene with a moving block: real motion for the gate, real entropy for x264."""
    rng = np.random.default_rng(0)
    background = (
        rng.integers(60, 200, size=(HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    )

    def frames():
        for i in range(seconds * FPS):
            frame = background.copy()
            x = (i * 9) % (WIDTH - 200)
            frame[300:460, x : x + 160] = (20, 30, 40)
            yield frame

    return encode_h264(frames(), fps=FPS, gop=FPS, crf=30)


def decode_baseline(track: VideoTrack, packets: list[Packet], keyframes_only: bool, to_rgb: bool) -> float:
    """Seconds to decode the packets (or their keyframes, each by itself); `to_rgb`: and convert each
    picture to a full-resolution RGB array."""
    context = av.CodecContext.create("h264", "r")
    context.extradata = track.codec_private
    context.thread_type = "SLICE"
    started = time.perf_counter()
    for packet in packets:
        if keyframes_only and not packet.keyframe:
            continue
        for picture in context.decode(av.Packet(packet.data)):
            picture.to_ndarray(format="rgb24") if to_rgb else None
        if keyframes_only:
            context.decode(None)
            context.flush_buffers()
    return time.perf_counter() - started


def all_accounted(stats: WorkerStats) -> bool:
    """Every sampled frame gated, analysed, dropped or failed: the worker has nothing left in hand."""
    done = stats.frames_gated + stats.frames_analysed + stats.frames_dropped + stats.frames_failed
    return done == stats.frames_sampled


def run_worker(track: VideoTrack, packets: list[Packet], seconds: int) -> tuple[float, float, dict]:
    groups = list(fragments_by_keyframe(packets))
    with LocalKvsMedia() as kvs:
        os.environ.update(kvs.env())
        stream = kvs.stream("bench")
        stream.chunk_range = (16384, 65536)
        t0 = time.time() - seconds
        for i, group in enumerate(groups):
            number = str(BASE_NUMBER + i)
            stream.add_fragment(
                get_media_fragment(
                    track,
                    group,
                    fragment_number=number,
                    producer_timestamp=t0 + group[0].pts_ms / 1000,
                    continuation_token=number,
                )
            )
        config = WorkerConfig(
            camera_id="bench", site="bench", source="kvs://bench", sample_fps=1.0, queue_size=64
        )
        stop = threading.Event()
        done = threading.Event()
        source = KvsSource(
            "bench",
            sample_fps=1.0,
            camera_id="bench",
            start=StartSelector(StartSelectorType.EARLIEST),
            stop_event=stop,
            endpoints=EndpointCache(),
            on_fragment=lambda meta: (
                meta.fragment_number == str(BASE_NUMBER + len(groups) - 1) and done.set()
            ),
        )
        publisher = AlertPublisher("alerts", client=NoKinesis(), camera_id="bench")
        worker = Worker(
            config, source=source, detector=ConstantResponder(), publisher=publisher, stop_event=stop
        )
        source.open()  # as build_worker does before any thread starts: GetDataEndpoint, once per stream
        cpu0, wall0 = time.process_time(), time.perf_counter()
        worker.start()
        done.wait(600)  # the reader has handed over every frame of the last fragment
        while not all_accounted(worker.stats):  # and the analyser has finished them (not just taken them)
            time.sleep(0.0005)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        stats = worker.stop()
    return wall, cpu, {
        **stats.to_dict(),
        "frames_skipped_nonkey": source.stats.frames_skipped_nonkey,
        "frames_skipped_unsampled": source.stats.frames_skipped_unsampled,
    }


def run_batched(cameras: int, frames: int, batched: bool) -> dict:
    """`cameras` analyser threads, `frames` detects each; one shared dispatcher or a call per frame."""
    calls: list[int] = []

    def send(items, window, _attributes):  # type: ignore[no-untyped-def]
        time.sleep(ENDPOINT_S)  # the endpoint's round trip
        calls.append(len(items))
        return InferenceResponse(model_version="constant", threshold=1.0, temporal_window=window,
                                 results=[FrameResult(score=0.1) for _ in items])

    settings = FleetBatchConfig()
    batcher = BatchingDetector(send, endpoint_name="bench", max_batch=settings.max_batch if batched else 1,
                               max_wait_s=settings.max_wait_ms / 1000 if batched else 0.0)
    batcher.start()
    image = np.zeros((*SENT, 3), np.uint8)

    def analyse(camera: str) -> None:
        detector = batcher.for_camera(camera)
        detector.temporal_window = 1
        for _ in range(frames):
            detector.detect([image])

    threads = [threading.Thread(target=analyse, args=(f"cam-{i}",)) for i in range(cameras)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall_s = time.perf_counter() - started
    batcher.stop()
    return {
        "calls": len(calls),
        "frames": sum(calls),
        "calls_per_frame": round(len(calls) / sum(calls), 3),
        "mean_batch": round(sum(calls) / len(calls), 2),
        "frames_per_s": round(sum(calls) / wall_s, 1),
    }


def report(results: dict) -> None:
    """The figures as a table: every ratio is to the baselines measured in this run."""
    goals, w = results["goals"], results["worker_1fps"]
    every, key, yuv = (
        results["decode_all_frames"], results["decode_keyframes_only"], results["decode_keyframes_only_no_rgb"]
    )

    def verdict(value: float, goal: float) -> str:
        return f"goal >= {goal}: {'met' if value >= goal else 'NOT MET'}"

    print(f"==> results: best of {RUNS} alternating runs each; ratios are to this run's baselines")
    print(f"  {'':34s}{'wall s':>8s}{'video s/s':>11s}{'ratio':>8s}")
    print(f"  {'PyAV decode, every frame':34s}{every['wall_s']:8.3f}{every['video_s_per_s']:11.2f}")
    print(f"  {'PyAV decode, keyframes, to RGB':34s}{key['wall_s']:8.3f}{key['video_s_per_s']:11.2f}{1:8.3f}  baseline")
    print(f"  {'PyAV decode, keyframes, no RGB':34s}{yuv['wall_s']:8.3f}{yuv['video_s_per_s']:11.2f}")
    ratio = w["ratio_to_keyframes_only"]
    print(
        f"  {'worker at 1 fps (KVS -> alerts)':34s}{w['wall_s']:8.3f}{w['video_s_per_s']:11.2f}{ratio:8.3f}"
        f"  {verdict(ratio, goals['ratio_to_keyframes_only'])}"
    )
    print(
        f"  {'':34s}{'':19s}{w['ratio_to_keyframes_only_no_rgb']:8.3f}  to the decoder alone (no RGB; no goal)"
    )
    cameras = w["cameras_per_core_realtime"]
    print(
        f"  worker CPU {w['cpu_s']:.3f} s for {results['input']['seconds']} s of video: {cameras:.1f} cameras per "
        f"core in real time at 1 fps  {verdict(cameras, goals['cameras_per_core_realtime'])}"
    )
    fleet = results["fleet_shared_calls"]
    shared, alone = fleet["batched"], fleet["one_call_per_frame"]
    print(
        f"  fleet, {fleet['cameras']} cameras: {shared['calls_per_frame']:.3f} calls/frame (mean batch "
        f"{shared['mean_batch']}, {shared['frames_per_s']} frames/s) vs 1.000 ({alone['frames_per_s']} frames/s) "
        "one call per frame"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="worker throughput benchmark")
    parser.add_argument("--seconds", type=int, default=60, help="seconds of 720p30 video (default 60)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    print(f"==> encoding {args.seconds} s of {WIDTH}x{HEIGHT} H.264 at {FPS} fps, 1 s GOP")
    track, packets = make_video(args.seconds)
    # Best of several runs: the machine is shared, the minimum is the least disturbed measurement.
    # Baseline and worker runs alternate, so a burst of load from other jobs hits both alike.
    all_s = min(decode_baseline(track, packets, keyframes_only=False, to_rgb=False) for _ in range(2))
    key_runs, key_yuv_runs, worker_runs = [], [], []
    for _ in range(RUNS):
        key_runs.append(decode_baseline(track, packets, keyframes_only=True, to_rgb=True))
        key_yuv_runs.append(decode_baseline(track, packets, keyframes_only=True, to_rgb=False))
        worker_runs.append(run_worker(track, packets, args.seconds))
    key_s, key_yuv_s = min(key_runs), min(key_yuv_runs)
    wall_s, cpu_s, stats = min(worker_runs, key=lambda run: run[0])
    print(f"==> {CAMERAS} cameras x {FRAMES_PER_CAMERA} frames: shared calls vs one call per frame")
    fleet = {
        "cameras": CAMERAS,
        "frames_per_camera": FRAMES_PER_CAMERA,
        "endpoint_s_per_call": ENDPOINT_S,
        "frame": [*SENT, 3],
        "fleet_batch": FleetBatchConfig().model_dump(),
        "batched": run_batched(CAMERAS, FRAMES_PER_CAMERA, batched=True),
        "one_call_per_frame": run_batched(CAMERAS, FRAMES_PER_CAMERA, batched=False),
    }
    video_s = args.seconds
    results = {
        "input": {
            "width": WIDTH,
            "height": HEIGHT,
            "fps": FPS,
            "gop_s": 1.0,
            "seconds": video_s,
            "frames": len(packets),
        },
        "decode_all_frames": {
            "wall_s": round(all_s, 3),
            "frames_per_s": round(len(packets) / all_s, 1),
            "video_s_per_s": round(video_s / all_s, 2),
        },
        "decode_keyframes_only": {  # the baseline: each keyframe decoded and converted to RGB
            "wall_s": round(key_s, 3),
            "video_s_per_s": round(video_s / key_s, 2),
        },
        "decode_keyframes_only_no_rgb": {  # the decoder alone: its YUV pictures, not converted
            "wall_s": round(key_yuv_s, 3),
            "video_s_per_s": round(video_s / key_yuv_s, 2),
        },
        "worker_1fps": {
            "wall_s": round(wall_s, 3),
            "cpu_s": round(cpu_s, 3),
            "video_s_per_s": round(video_s / wall_s, 2),
            "ratio_to_keyframes_only": round(key_s / wall_s, 3),
            "ratio_to_keyframes_only_no_rgb": round(key_yuv_s / wall_s, 3),
            "ratio_to_all_frames": round(all_s / wall_s, 3),
            "cameras_per_core_realtime": round(video_s / cpu_s, 1),
            "stats": stats,
        },
        "runs_wall_s": {  # every run, in order (alternating): how noisy the machine was
            "decode_keyframes_only": [round(run, 3) for run in key_runs],
            "decode_keyframes_only_no_rgb": [round(run, 3) for run in key_yuv_runs],
            "worker_1fps": [round(run[0], 3) for run in worker_runs],
        },
        "fleet_shared_calls": fleet,
        "goals": {"ratio_to_keyframes_only": 0.8, "cameras_per_core_realtime": 40},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "shared 2-core VM, other jobs running",
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    report(results)
    print(f"==> {RESULTS}")


if __name__ == "__main__":
    main()
