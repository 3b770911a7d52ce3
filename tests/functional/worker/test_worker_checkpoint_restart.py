"""Checkpoints on a real moto DynamoDB, and the kill -9 test: a worker process reading a live KVS
stream (the local KVS twin) is killed mid-stream and started again; it resumes after its
checkpoint, no fragment is lost and no event gets a second, different alert."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from synthetic_video import render_scene
from worker_fake_endpoint import FakeEndpoint

from contracts.alert import AlertRecord
from kvs.local_media import LocalKvsMedia
from kvs.mkv_writer import Packet, encode_h264, fragments_by_keyframe, get_media_fragment
from local.stack import LocalStack
from worker.checkpoints import Checkpoint, CheckpointStore, FragmentProgress

REPO_ROOT = Path(__file__).resolve().parents[3]
BASE = 91343852333181432392682062607743920146159200000
T0 = 1_764_000_000.0
N_FRAGMENTS = 15
EVENTS = ((20, 39), (70, 89))  # frames (10 fps) with an intruder in view


def two_event_fragments() -> list[bytes]:
    frames = render_scene(10 * N_FRAGMENTS)
    for event in EVENTS:
        with_intruder = render_scene(10 * N_FRAGMENTS, intruder=event)
        frames[event[0] : event[1] + 1] = with_intruder[event[0] : event[1] + 1]
    track, packets = encode_h264(frames, fps=10, gop=10)
    return [
        get_media_fragment(
            track,
            [Packet(p.pts_ms, p.keyframe, p.data) for p in group],
            fragment_number=str(BASE + i),
            producer_timestamp=T0 + i,
            continuation_token=str(BASE + i),
        )
        for i, group in enumerate(fragments_by_keyframe(packets))
    ]


def alerts_on_stream(stack: LocalStack) -> list[AlertRecord]:
    kinesis = stack.client("kinesis")
    iterator = kinesis.get_shard_iterator(
        StreamName="alerts", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return [
        AlertRecord.model_validate_json(r["Data"])
        for r in kinesis.get_records(ShardIterator=iterator)["Records"]
    ]


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_checkpoint_store_only_moves_forward(local_stack: LocalStack) -> None:
    # GIVEN a checkpoint at fragment ...200005
    store = CheckpointStore("vigil-state", client=local_stack.client("dynamodb"), worker_id="w1")
    assert store.save(
        Checkpoint("cam-1", str(BASE + 5), continuation_token=str(BASE + 5), producer_timestamp=T0 + 5)
    )
    # WHEN a late writer tries to move it back, then a newer one forward
    back = store.save(Checkpoint("cam-1", str(BASE + 4)))
    forward = store.save(Checkpoint("cam-1", str(BASE + 6), producer_timestamp=T0 + 6))
    # THEN only the forward write took
    loaded = store.load("cam-1")
    assert (back, forward, store.stale) == (False, True, 1)
    assert loaded is not None
    assert (loaded.fragment_number, loaded.producer_timestamp, loaded.worker_id) == (
        str(BASE + 6),
        T0 + 6,
        "w1",
    )
    assert store.load("cam-2") is None


def test_progress_waits_for_analysis_and_alert_acknowledgement() -> None:
    # GIVEN three fragments read, frames of the first two in flight, an alert of the second unacked
    pending = {"alert-2"}
    progress = FragmentProgress("cam-1", pending_alerts=lambda: set(pending))
    for number in ("1", "2", "3"):
        progress.frame_queued(number)
    progress.alert_raised("2", "alert-2")
    for number in ("1", "2", "3"):
        progress.fragment_read(number, number, float(number))
    assert progress.checkpoint is None  # nothing analysed yet
    # WHEN the frames are analysed, fragment 3 first
    progress.frame_done("3")
    assert progress.checkpoint is None  # 3 is done but 1 is not: no gap
    progress.frame_done("1")
    first = progress.checkpoint
    progress.frame_done("2")
    held = progress.checkpoint
    pending.clear()  # Kinesis acknowledged alert-2
    progress.advance()
    # THEN the checkpoint moved 1, held before 2 while its alert waited, then jumped to 3
    assert [c.fragment_number if c else None for c in (first, held, progress.checkpoint)] == ["1", "1", "3"]
    assert progress.in_flight == 0


def test_an_open_event_travels_with_the_checkpoint_instead_of_holding_it() -> None:
    # GIVEN an event open after fragment 1's frame, still open after fragment 2's
    progress = FragmentProgress("cam-1")
    open_event = {"run": None, "event": {"start_pts_s": 1.0, "started_at": "2026-12-06T00:00:01+00:00",
                                         "frames": 2, "peak": 0.9, "below_since_s": None, "suppressed": False},
                  "last_alert_pts_s": 1.2}
    for number in ("1", "2"):
        progress.frame_queued(number)
        progress.fragment_read(number, None, None)
        # WHEN each fragment's frame is analysed
        progress.frame_done(number, policy=open_event)
    # THEN the checkpoint moves on to fragment 2 and carries the open event (a restart continues it)
    assert progress.checkpoint == Checkpoint("cam-1", "2", policy=open_event)


def test_a_restart_after_a_checkpoint_tracks_only_later_fragments_and_keeps_its_policy() -> None:
    # GIVEN a run resumed after fragment 5, with a candidate event in its checkpoint, and a 2-frame history
    state = {"run": {"start_pts_s": 5.5, "started_at": "2026-12-06T00:00:05.500000+00:00", "frames": 1,
                     "peak": 0.8, "below_since_s": None, "suppressed": False}, "event": None, "last_alert_pts_s": None}
    resumed = Checkpoint("cam-1", "5", policy=state, history_from="4", history_due_s=4.0)
    progress = FragmentProgress("cam-1", resumed=resumed, history_frames=2)
    # WHEN pre-roll fragments 4 and 5 are read again, then fragment 6 (all gated out)
    for number, due in (("4", 4.0), ("5", 5.0), ("6", 6.0)):
        progress.fragment_started(number, due)
        progress.frame_sampled(number)
        progress.fragment_read(number, None, None)
    # THEN only fragment 6 moves the checkpoint; it keeps the resumed policy and names 5 for the history
    assert progress.checkpoint == Checkpoint("cam-1", "6", policy=state, history_from="5", history_due_s=5.0)


def start_worker(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "--config", str(config), "--log-level", "INFO"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


@pytest.mark.timeout(120)
def test_kill_9_mid_stream_then_restart_loses_no_fragment_and_duplicates_no_alert(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    # GIVEN a live KVS stream that a camera feeds one 1 s fragment at a time (two intruder events)
    fragments = two_event_fragments()
    store = CheckpointStore("vigil-state", client=local_stack.client("dynamodb"))
    with LocalKvsMedia() as kvs:
        stream = kvs.stream("cam-7")
        stream.follow_s = 0.5
        config = tmp_path / "worker.json"
        config.write_text(
            json.dumps(
                {
                    "camera_id": "cam-7",
                    "site": "hq",
                    "source": "kvs://cam-7",
                    "sample_fps": 5.0,
                    "retry_base_s": 0.01,
                    "policy": {"cooldown_s": 1.0, "clear_after_s": 1.0},
                    "kvs": {"start": "EARLIEST"},
                }
            )
        )
        env = {
            **os.environ,
            **local_stack.env(),
            **kvs.env(),
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": fake_endpoint.url,
            "PYTHONPATH": str(REPO_ROOT),
        }
        log = tmp_path / "worker.log"
        for fragment in fragments[:3]:
            stream.add_fragment(fragment)
        worker = start_worker(config, env, log)

        def checkpoint_at_least(i: int) -> bool:
            checkpoint = store.load("cam-7")
            return checkpoint is not None and int(checkpoint.fragment_number) >= BASE + i

        # WHEN it is killed with SIGKILL once it has checkpointed past the first event, mid-stream
        for i, fragment in enumerate(fragments[3:7], start=3):
            stream.add_fragment(fragment)
            time.sleep(0.2)
        wait_for(lambda: checkpoint_at_least(5), 30, "a checkpoint past fragment 5")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        killed_at = store.load("cam-7")
        assert killed_at is not None
        requests_before = len(stream.requests)
        # ... the camera keeps sending, and the worker is started again
        for fragment in fragments[7:]:
            stream.add_fragment(fragment)
        worker = start_worker(config, env, log)
        wait_for(lambda: checkpoint_at_least(N_FRAGMENTS - 1), 60, "the last fragment checkpointed")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0, log.read_text()[-3000:]

    # THEN the restart read again from the fragment its model history needs (16 frames at 5 fps: 3 to 4
    # fragments before its checkpoint), and every event has one alert id
    assert killed_at.history_from is not None
    assert 3 <= int(killed_at.fragment_number) - int(killed_at.history_from) <= 4
    assert stream.requests[requests_before] == {
        "StartSelectorType": "FRAGMENT_NUMBER",
        "AfterFragmentNumber": killed_at.history_from,
    }
    alerts = alerts_on_stream(local_stack)
    starts = sorted({(a.alert_id, a.started_at.timestamp()) for a in alerts}, key=lambda item: item[1])
    assert [round(start - T0, 1) for _, start in starts] == [2.0, 7.0]  # first over-threshold frames
    final = store.load("cam-7")
    assert final is not None and final.fragment_number == str(BASE + N_FRAGMENTS - 1)


def worker_config(path: Path, camera: str) -> Path:
    path.write_text(json.dumps({
        "camera_id": camera, "site": "hq", "source": f"kvs://{camera}", "sample_fps": 5.0,
        "retry_base_s": 0.01, "policy": {"cooldown_s": 1.0, "clear_after_s": 1.0, "min_frames": 2},
        "kvs": {"start": "EARLIEST"},
    }))
    return path


def event_starts(alerts: list[AlertRecord], camera: str) -> dict[float, set[str]]:
    """Media second of each event's first over-threshold frame -> the alert ids it was notified under."""
    starts: dict[float, set[str]] = {}
    for alert in alerts:
        if alert.camera_id == camera:
            starts.setdefault(round(alert.started_at.timestamp() - T0, 1), set()).add(alert.alert_id)
    return starts


@pytest.mark.timeout(180)
def test_kills_mid_event_give_the_alerts_of_a_clean_run_under_the_same_ids(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, tmp_path: Path
) -> None:
    # GIVEN two cameras fed the same live stream (two intruder events, min_frames 2), one worker each
    fragments = two_event_fragments()
    store = CheckpointStore("vigil-state", client=local_stack.client("dynamodb"))
    with LocalKvsMedia() as kvs:
        env = {**os.environ, **local_stack.env(), **kvs.env(),
               "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": fake_endpoint.url, "PYTHONPATH": str(REPO_ROOT)}
        workers = {}
        for camera in ("cam-clean", "cam-killed"):
            stream = kvs.stream(camera)
            stream.follow_s = 0.5
            for fragment in fragments[:2]:
                stream.add_fragment(fragment)
            config = worker_config(tmp_path / f"{camera}.json", camera)
            workers[camera] = start_worker(config, env, tmp_path / f"{camera}.log")

        def checkpointed(camera: str, i: int) -> bool:
            checkpoint = store.load(camera)
            return checkpoint is not None and int(checkpoint.fragment_number) >= BASE + i

        # WHEN the camera sends a fragment at a time, and one worker is killed with SIGKILL whenever its
        # checkpoint reaches a fragment inside an event (2-3 s and 7-8 s) or just after one, and restarted
        kills = {3: False, 7: False, 8: False, 10: False}
        for i, fragment in enumerate(fragments[2:], start=2):
            for camera in workers:
                kvs.stream(camera).add_fragment(fragment)
            for at, done in kills.items():
                if not done and i > at:
                    wait_for(lambda at=at: checkpointed("cam-killed", at), 30, f"a checkpoint at fragment {at}")
                    workers["cam-killed"].send_signal(signal.SIGKILL)
                    workers["cam-killed"].wait(10)
                    kills[at] = True
                    workers["cam-killed"] = start_worker(tmp_path / "cam-killed.json", env, tmp_path / "cam-killed.log")
            time.sleep(0.2)
        for camera, worker in workers.items():
            wait_for(lambda camera=camera: checkpointed(camera, N_FRAGMENTS - 1), 60, f"{camera} at the end")
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(20) == 0, (tmp_path / f"{camera}.log").read_text()[-3000:]

    # THEN the killed camera notified the same events as the clean one, each under a single alert id
    alerts = alerts_on_stream(local_stack)
    clean, killed = event_starts(alerts, "cam-clean"), event_starts(alerts, "cam-killed")
    assert all(kills.values())
    assert sorted(clean) == sorted(killed) == [2.0, 7.0]
    assert {start: len(ids) for start, ids in killed.items()} == {2.0: 1, 7.0: 1}
