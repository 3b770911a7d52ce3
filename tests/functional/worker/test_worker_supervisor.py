"""The fleet supervisor on real parts: leases on a moto DynamoDB (injected clock where time matters),
real workers reading the local KVS twin over HTTP, the fake SageMaker endpoint, Kinesis on moto."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from synthetic_video import render_scene
from worker_fake_endpoint import FakeEndpoint

from kvs import reader as kvs_reader
from kvs.local_media import LocalKvsMedia
from kvs.mkv_writer import Packet, encode_h264, fragments_by_keyframe, get_media_fragment
from local.stack import LocalStack
from worker.checkpoints import CheckpointStore
from worker.config import WorkerConfig, load_config
from worker.leases import LeaseManager, LeaseSettings
from worker.supervisor import Supervisor, camera_configs, parse_cameras

BASE = 91343852333181432392682062607743920146159300000
T0 = 1_764_000_000.0
SETTINGS = LeaseSettings(lease_s=30.0, margin_s=3.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def three_fragments() -> list[bytes]:
    track, packets = encode_h264(render_scene(30), fps=10, gop=10)
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


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def kvs(
    local_stack: LocalStack, fake_endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalKvsMedia]:
    """The local KVS twin; boto3's kinesisvideo points at it (moto and the fake endpoint do too)."""
    with LocalKvsMedia() as media:
        for name, value in media.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(kvs_reader, "_SHARED_ENDPOINTS", None)  # its client: made for this twin
        yield media


def fleet(n: int) -> tuple[str, dict[str, WorkerConfig]]:
    """`$VIGIL_CAMERAS` of n cameras (stream names unique to the test: the endpoint cache is
    process-wide) and their configs, as `python -m worker` builds them."""
    run = uuid.uuid4().hex[:8]
    raw = json.dumps(
        {f"cam-{i}": {"site": f"site-{i % 2}", "stream_name": f"vigil-{run}-cam-{i}"} for i in range(n)}
    )
    configs = camera_configs(
        parse_cameras(raw),
        lambda **camera: load_config(None, **camera, retry_base_s=0.01, kvs={"start": "EARLIEST"}),
    )
    return raw, configs


def supervisor(
    name: str, configs: dict[str, WorkerConfig], stack: LocalStack, clock=time.time, settings=SETTINGS
) -> Supervisor:
    leases = LeaseManager(
        name,
        configs,
        table_name="vigil-state",
        client=stack.client("dynamodb"),
        settings=settings,
        clock=clock,
    )
    return Supervisor(configs, leases)


def lease_items(stack: LocalStack) -> dict[str, str]:
    items = stack.client("dynamodb").scan(TableName="vigil-state", ConsistentRead=True)["Items"]
    return {
        i["id"]["S"]: i.get("owner", {}).get("S", "")
        for i in items
        if i["id"]["S"].startswith(("lease#", "worker#"))
    }


def test_three_cameras_get_three_workers_that_read_their_streams_and_checkpoint(
    local_stack: LocalStack, kvs: LocalKvsMedia
) -> None:
    # GIVEN three cameras, each with a KVS stream of three 1 s fragments, and one supervisor
    _, configs = fleet(3)
    fragments = three_fragments()
    for config in configs.values():
        for fragment in fragments:
            kvs.stream(config.source.removeprefix("kvs://")).add_fragment(fragment)
    sup = supervisor("task-a", configs, local_stack, clock=Clock())
    store = CheckpointStore("vigil-state", client=local_stack.client("dynamodb"))

    # WHEN it ticks once
    result = sup.tick()

    # THEN it owns the three cameras and runs one worker per camera on its own stream
    assert (result.owned, result.fair_share) == ({"cam-0", "cam-1", "cam-2"}, 3)
    assert {cam: (w.config.source, w.running()) for cam, w in sup.workers.items()} == {
        cam: (config.source, True) for cam, config in configs.items()
    }
    # ... each reads its stream to the end and checkpoints the last fragment
    for cam in configs:
        wait_for(
            lambda cam=cam: (c := store.load(cam)) is not None and c.fragment_number == str(BASE + 2),
            20,
            f"{cam} checkpointed",
        )
    workers = dict(sup.workers)
    sup.stop_event.set()
    sup.shutdown()
    assert {
        cam: w.stats.frames_decoded > 0 and not w.running() for cam, w in workers.items()
    } == dict.fromkeys(configs, True)
    assert {cam: kvs.stream(c.source.removeprefix("kvs://")).requests[0] for cam, c in configs.items()} == {
        cam: {"StartSelectorType": "EARLIEST"} for cam in configs
    }
    # ... and stopping handed every lease back
    assert (sup.workers, lease_items(local_stack)) == ({}, {})


def test_two_supervisors_share_six_cameras_three_each_every_camera_once(
    local_stack: LocalStack, kvs: LocalKvsMedia
) -> None:
    # GIVEN six live (silent) camera streams and two supervisors on one clock
    _, configs = fleet(6)
    for config in configs.values():
        kvs.stream(config.source.removeprefix("kvs://"))
    clock = Clock()
    a = supervisor("task-a", configs, local_stack, clock=clock)
    b = supervisor("task-b", configs, local_stack, clock=clock)
    try:
        # WHEN both tick every heartbeat for one lease period
        end = clock.now + SETTINGS.lease_s
        while clock.now < end:
            a.tick()
            b.tick()
            clock.now += SETTINGS.heartbeat_s
        # THEN each runs three workers, and every camera runs in exactly one of them
        running = Counter(cam for sup in (a, b) for cam, worker in sup.workers.items() if worker.running())
        assert running == Counter(dict.fromkeys(configs, 1))
        assert (len(a.workers), len(b.workers)) == (3, 3)
        assert set(a.workers) == a.leases.owned and set(b.workers) == b.leases.owned
        # ... and the cameras a handed to b were stopped in a (started once there, once in b)
        assert Counter(a.started + b.started) == Counter(
            {cam: 1 + (cam in b.workers and cam in a.started) for cam in configs}
        )
    finally:
        a.shutdown()
        b.shutdown()
    assert lease_items(local_stack) == {}


def test_a_stopped_supervisor_releases_its_cameras_and_another_takes_them_at_once(
    local_stack: LocalStack, kvs: LocalKvsMedia
) -> None:
    # GIVEN supervisor a running its loop (real clock, 0.6 s leases) on four cameras, b idle
    _, configs = fleet(4)
    for config in configs.values():
        kvs.stream(config.source.removeprefix("kvs://"))
    fast = LeaseSettings(lease_s=0.6, margin_s=0.1)
    a = supervisor("task-a", configs, local_stack, settings=fast)
    thread = threading.Thread(target=a.run, daemon=True)
    thread.start()
    wait_for(lambda: len(a.workers) == 4, 10, "a to run four workers")
    b = supervisor("task-b", configs, local_stack, settings=LeaseSettings(lease_s=30.0, margin_s=3.0))
    try:
        # WHEN a is stopped (what SIGTERM does)
        a.stop_event.set()
        thread.join(10)
        assert not thread.is_alive()
        owners_after_stop = lease_items(local_stack)
        # ... and b ticks once, well within a's lease period
        result = b.tick()
        # THEN a left nothing behind, and b owns and runs all four cameras at once
        assert (a.workers, owners_after_stop) == ({}, {})
        assert (result.owned, result.live_workers) == (set(configs), 1)
        assert {cam for cam, w in b.workers.items() if w.running()} == set(configs)
    finally:
        b.shutdown()
