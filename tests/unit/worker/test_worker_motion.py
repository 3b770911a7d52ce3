"""Motion gate: still frames are held back, motion and heartbeats go through, and slow change adds
up against the last frame sent."""

from __future__ import annotations

import numpy as np
from synthetic_video import render_scene

from worker.config import MotionConfig
from worker.motion import GateDecision, GateReason, MotionGate


def brighter(image: np.ndarray, delta: int) -> np.ndarray:
    return np.clip(image.astype(np.int16) + delta, 0, 255).astype(np.uint8)


def test_first_frame_is_sent_then_a_still_scene_is_held_back():
    # GIVEN a still scene with sensor noise (+-5 grey levels, fresh each frame)
    rng = np.random.default_rng(1)
    still = render_scene(1)[0]
    gate = MotionGate(MotionConfig(heartbeat_s=2.0))

    # WHEN five noisy frames 0.2 s apart go through the gate
    decisions = [
        gate.check(brighter(still, 0) + rng.integers(0, 6, size=still.shape, dtype=np.uint8), i * 0.2).reason
        for i in range(5)
    ]

    # THEN only the first is sent
    assert decisions == [GateReason.FIRST] + [GateReason.STILL] * 4


def test_an_intruder_is_motion():
    # GIVEN the scene, then the intruder in view
    frames = render_scene(31, intruder=(30, 40))
    gate = MotionGate(MotionConfig())
    gate.check(frames[0], 0.0)

    # WHEN
    decision = gate.check(frames[30], 0.2)

    # THEN sent as motion; the 50 x 30 block is about 4 % of the 256 x 144 image
    assert decision.send and decision.reason is GateReason.MOTION
    assert 0.03 < decision.changed < 0.06


def test_heartbeat_sends_a_still_frame_every_heartbeat_s_of_media_time():
    still = render_scene(1)[0]
    gate = MotionGate(MotionConfig(heartbeat_s=2.0))

    sent = [pts for pts in [0.0, 0.2, 1.8, 2.0, 2.2, 3.8, 4.0] if gate.check(still, pts).send]

    assert sent == [0.0, 2.0, 4.0]


def test_heartbeat_counts_float_media_time_sums_as_exact():
    still = render_scene(1)[0]
    gate = MotionGate(MotionConfig(heartbeat_s=2.0))
    gate.check(still, 6.2)

    assert gate.check(still, 8.2) == GateDecision(
        True, GateReason.HEARTBEAT, 0.0
    )  # 8.2 - 6.2 < 2.0 in floats


def test_slow_change_adds_up_against_the_last_frame_sent():
    # GIVEN a scene that brightens by 10 grey levels per frame (each step under pixel_delta=25)
    still = render_scene(1)[0]
    gate = MotionGate(MotionConfig(pixel_delta=25, heartbeat_s=100.0))

    # WHEN it goes through the gate
    reasons = [gate.check(brighter(still, 10 * i), i * 0.2).reason for i in range(6)]

    # THEN the change since the last frame sent triggers at +30, then again at +60 (from +30)
    assert reasons == [
        GateReason.FIRST,
        GateReason.STILL,
        GateReason.STILL,
        GateReason.MOTION,
        GateReason.STILL,
        GateReason.STILL,
    ]


def test_a_new_resolution_is_sent_as_a_first_frame():
    gate = MotionGate(MotionConfig())
    gate.check(render_scene(1)[0], 0.0)

    decision = gate.check(render_scene(1, height=72, width=128)[0], 0.2)

    assert decision == GateDecision(True, GateReason.FIRST, 0.0)


def test_threshold_zero_sends_every_frame():
    still = render_scene(1)[0]
    gate = MotionGate(MotionConfig(threshold=0.0))

    assert all(gate.check(still, i * 0.2).send for i in range(5))
