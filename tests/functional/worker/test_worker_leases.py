"""Leases on a real moto DynamoDB with an injected clock: six cameras shared by two workers, then
three, then one; every camera owned by exactly one live worker within one lease period."""

from __future__ import annotations

from collections import Counter

from local.stack import LocalStack
from worker.leases import LeaseManager, LeaseSettings

CAMERAS = [f"cam-{i}" for i in range(6)]
SETTINGS = LeaseSettings(lease_s=30.0, margin_s=3.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def run_period(workers: list[LeaseManager], clock: Clock, seconds: float) -> None:
    """Every worker ticks every heartbeat (lease_s / 3) for `seconds` of clock time."""
    end = clock.now + seconds
    while clock.now < end:
        for worker in workers:
            worker.tick()
        clock.now += SETTINGS.heartbeat_s


def ownership(workers: list[LeaseManager]) -> Counter[str]:
    return Counter(camera for worker in workers for camera in worker.owned)


def test_two_then_three_then_one_workers_share_six_cameras(local_stack: LocalStack) -> None:
    clock = Clock()
    dynamodb = local_stack.client("dynamodb")

    def worker(name: str) -> LeaseManager:
        return LeaseManager(
            name, CAMERAS, table_name="vigil-state", client=dynamodb, settings=SETTINGS, clock=clock
        )

    # GIVEN two workers
    a, b = worker("a"), worker("b")
    run_period([a, b], clock, SETTINGS.lease_s)
    # THEN each camera is owned exactly once, three each
    assert ownership([a, b]) == Counter({cam: 1 for cam in CAMERAS})
    assert sorted(len(w.owned) for w in (a, b)) == [3, 3]

    # WHEN a third worker joins, THEN within one lease period the six are spread two each
    c = worker("c")
    run_period([a, b, c], clock, SETTINGS.lease_s)
    assert ownership([a, b, c]) == Counter({cam: 1 for cam in CAMERAS})
    assert sorted(len(w.owned) for w in (a, b, c)) == [2, 2, 2]

    # WHEN b stops (SIGTERM: releases) and c crashes (its leases must expire), THEN a owns all six
    # within one lease period (plus a heartbeat for a to notice)
    b.release_all()
    crashed = set(c.owned)
    run_period([a], clock, SETTINGS.lease_s + SETTINGS.heartbeat_s)
    assert ownership([a]) == Counter({cam: 1 for cam in CAMERAS})
    assert crashed <= a.owned


def test_no_camera_is_owned_twice_at_any_tick(local_stack: LocalStack) -> None:
    # GIVEN three workers ticking in lockstep from nothing
    clock = Clock()
    dynamodb = local_stack.client("dynamodb")
    workers = [
        LeaseManager(name, CAMERAS, table_name="vigil-state", client=dynamodb, settings=SETTINGS, clock=clock)
        for name in ("x", "y", "z")
    ]
    # WHEN they tick for two lease periods, THEN after every round no camera has two owners
    for _ in range(6):
        for w in workers:
            w.tick()
        assert max(ownership(workers).values(), default=1) == 1
        clock.now += SETTINGS.heartbeat_s
    assert ownership(workers) == Counter({cam: 1 for cam in CAMERAS})


def test_a_stalled_worker_stops_counting_its_leases_before_others_may_take_them(
    local_stack: LocalStack,
) -> None:
    clock = Clock()
    dynamodb = local_stack.client("dynamodb")
    stalled = LeaseManager(
        "s", CAMERAS[:1], table_name="vigil-state", client=dynamodb, settings=SETTINGS, clock=clock
    )
    other = LeaseManager(
        "o", CAMERAS[:1], table_name="vigil-state", client=dynamodb, settings=SETTINGS, clock=clock
    )
    stalled.tick()
    # WHEN the owner stalls past its lease, less the margin
    clock.now += SETTINGS.lease_s - SETTINGS.margin_s
    # THEN it no longer counts the camera as its own, while the lease is not yet free for others
    assert stalled.owned == set()
    assert other.tick().owned == set()
    clock.now += SETTINGS.margin_s + 0.1
    assert other.tick().owned == {"cam-0"}
    assert stalled.tick().lost == {"cam-0"}
