"""`make bench-restarts`: a worker killed with SIGKILL at random moments, beside one never killed (issue 22).

Two cameras get the same live stream from the local KVS twin (one-second H.264 fragments of a still
scene with intruder events, fed at `--speed` x real time); each has its own worker process, its own
fake endpoint (the worker tests' darkness model) and checkpoints on a moto server. One worker is
killed with SIGKILL `--kills` times at random moments (seeded) and started again at once. At the end
both finish the stream, and their alerts on the Kinesis stream are compared by event (the media time
of the event's first over-threshold frame):

- events missing: notified for the clean camera, never for the killed one;
- events with a second id: notified for the killed camera under more than one `alert_id`, or at a
  start the clean run never had;
- repeats: records beyond one per alert id (by design: the Lambda drops them);
- restart to first analysed frame: process start to the first InvokeEndpoint of the new process.

Writes bench/results/restarts.json. Goal: 0 missing, 0 second ids.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "tests"), str(REPO_ROOT / "tests" / "functional" / "worker")]

from synthetic_video import render_scene
from worker_fake_endpoint import serve_fake_endpoint

from contracts.alert import AlertRecord
from kvs.local_media import LocalKvsMedia
from kvs.mkv_writer import Packet, encode_h264, fragments_by_keyframe, get_media_fragment
from local.stack import LocalStack
from worker.checkpoints import CheckpointStore

RESULT = REPO_ROOT / "bench" / "results" / "restarts.json"
BASE = 91343852333181432392682062607743920146159200000
T0 = 1_764_000_000.0
FPS = 10
CAMERAS = ("cam-clean", "cam-killed")


def stream_fragments(seconds: int, events: list[tuple[int, int]]) -> list[bytes]:
    """One-second fragments of a still scene; an intruder in view for each (first, last) frame range."""
    frames = render_scene(FPS * seconds)
    for first, last in events:
        frames[first : last + 1] = render_scene(FPS * seconds, intruder=(first, last))[first : last + 1]
    track, packets = encode_h264(frames, fps=FPS, gop=FPS)
    return [
        get_media_fragment(track, [Packet(p.pts_ms, p.keyframe, p.data) for p in group],
                           fragment_number=str(BASE + i), producer_timestamp=T0 + i, continuation_token=str(BASE + i))
        for i, group in enumerate(fragments_by_keyframe(packets))
    ]


def start_worker(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "worker", "--config", str(config), "--log-level", "INFO"],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"))


def alert_events(stack: LocalStack) -> dict[str, dict[float, list[str]]]:
    """camera -> media second of each event's start -> the alert ids of its records (repeats included)."""
    kinesis = stack.client("kinesis")
    iterator = kinesis.get_shard_iterator(StreamName="alerts", ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    events: dict[str, dict[float, list[str]]] = {camera: {} for camera in CAMERAS}
    while iterator:
        answer = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        for record in answer["Records"]:
            alert = AlertRecord.model_validate_json(record["Data"])
            events[alert.camera_id].setdefault(round(alert.started_at.timestamp() - T0, 1), []).append(alert.alert_id)
        iterator = answer.get("NextShardIterator") if answer["Records"] else None
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/bench_restarts.py", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of the killed camera's worker (default: 20)")
    parser.add_argument("--seconds", type=int, default=90, help="length of the stream, one fragment a second (default: 90)")
    parser.add_argument("--speed", type=float, default=2.0, help="fragments fed at this x real time (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="random kill moments and events (default: 0)")
    parser.add_argument("--out", type=Path, default=RESULT, help=f"result JSON (default: {RESULT})")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    starts = sorted(rng.sample(range(2, args.seconds - 4, 5), k=max(1, args.seconds // 12)))
    events = [(FPS * s + rng.randrange(FPS), FPS * s + rng.randrange(FPS) + FPS + rng.randrange(2 * FPS)) for s in starts]
    fragments = stream_fragments(args.seconds, events)
    feed_s = args.seconds / args.speed
    kill_at = sorted(rng.uniform(1.0, feed_s) for _ in range(args.kills))
    print(f"==> {args.seconds} one-second fragments at x{args.speed:g} ({feed_s:.0f} s), {len(events)} intruder "
          f"events, {args.kills} SIGKILLs of cam-killed's worker (seed {args.seed})", flush=True)
    restarts: list[float] = []
    with LocalStack() as stack, LocalKvsMedia() as kvs, tempfile.TemporaryDirectory() as tmp, \
            serve_fake_endpoint() as clean_endpoint, serve_fake_endpoint() as killed_endpoint:
        endpoints = {"cam-clean": clean_endpoint, "cam-killed": killed_endpoint}
        store = CheckpointStore("vigil-state", client=stack.client("dynamodb"))
        workers, configs, envs, logs = {}, {}, {}, {}
        for camera in CAMERAS:
            kvs.stream(camera).follow_s = 0.5
            configs[camera] = Path(tmp) / f"{camera}.json"
            configs[camera].write_text(json.dumps({
                "camera_id": camera, "site": "hq", "source": f"kvs://{camera}", "sample_fps": 5.0,
                "retry_base_s": 0.01, "policy": {"cooldown_s": 1.0, "clear_after_s": 1.0}, "kvs": {"start": "EARLIEST"},
            }))
            envs[camera] = {**os.environ, **stack.env(), **kvs.env(), "PYTHONPATH": str(REPO_ROOT),
                            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoints[camera].url}
            logs[camera] = Path(tmp) / f"{camera}.log"
            workers[camera] = start_worker(configs[camera], envs[camera], logs[camera])

        def feed() -> None:
            started = time.monotonic()
            for i, fragment in enumerate(fragments):
                time.sleep(max(0.0, started + i / args.speed - time.monotonic()))
                for camera in CAMERAS:
                    kvs.stream(camera).add_fragment(fragment)

        feeder = threading.Thread(target=feed, daemon=True)
        began = time.monotonic()
        feeder.start()
        for at in kill_at:
            time.sleep(max(0.0, began + at - time.monotonic()))
            workers["cam-killed"].send_signal(signal.SIGKILL)
            workers["cam-killed"].wait(10)
            calls = len(killed_endpoint.requests)
            restarted = time.monotonic()
            workers["cam-killed"] = start_worker(configs["cam-killed"], envs["cam-killed"], logs["cam-killed"])
            while len(killed_endpoint.requests) == calls and time.monotonic() - restarted < 10:
                time.sleep(0.01)
            if len(killed_endpoint.requests) > calls:
                restarts.append(time.monotonic() - restarted)
        feeder.join()
        last = str(BASE + len(fragments) - 1)
        deadline = time.monotonic() + 120
        for camera in CAMERAS:
            while time.monotonic() < deadline:
                checkpoint = store.load(camera)
                if checkpoint is not None and checkpoint.fragment_number == last:
                    break
                time.sleep(0.2)
            workers[camera].send_signal(signal.SIGTERM)
            workers[camera].wait(30)
        events_by_camera = alert_events(stack)
        finished = {camera: (store.load(camera) or None) for camera in CAMERAS}

    clean, killed = events_by_camera["cam-clean"], events_by_camera["cam-killed"]
    missing = sorted(set(clean) - set(killed))
    second_ids = sorted(s for s, ids in killed.items() if len(set(ids)) > 1 or s not in clean)
    repeats = sum(len(ids) - len(set(ids)) for ids in killed.values())
    result = {
        "benchmark": "restarts",
        "stream": {"seconds": args.seconds, "speed": args.speed, "intruder_events": len(events), "seed": args.seed},
        "kills": args.kills,
        "clean_events": sorted(clean),
        "killed_events": sorted(killed),
        "events_missing": missing,
        "events_with_a_second_id": second_ids,
        "repeats_same_id": repeats,
        "restart_to_first_analysed_s": {
            "median": round(statistics.median(restarts), 3) if restarts else None,
            "max": round(max(restarts), 3) if restarts else None, "restarts_measured": len(restarts)},
        "both_finished_the_stream": all(c is not None and c.fragment_number == last for c in finished.values()),
        "goal": {"events_missing": 0, "events_with_a_second_id": 0},
    }
    result["passed"] = not missing and not second_ids and result["both_finished_the_stream"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"clean run: {len(clean)} events; killed x{args.kills}: {len(killed)} events, missing {len(missing)}, "
          f"second id {len(second_ids)}, repeats under the same id {repeats}; restart to first analysed frame "
          f"median {result['restart_to_first_analysed_s']['median']} s; passed={result['passed']} ({args.out})",
          flush=True)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
