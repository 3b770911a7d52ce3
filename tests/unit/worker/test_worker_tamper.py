"""worker.tamper on a fixed sequence of frames: blank, defocused and moved views each raise
camera_tamper once they last min_duration_s, once per episode; masks are left out; no signal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from synthetic_video import render_tampered

from contracts.alert import AlertRecord, Severity, make_alert_id
from contracts.camera_scene import CameraScene
from worker.privacy import PrivacyMasker
from worker.tamper import TAMPER_MODEL_VERSION, TamperMonitor

T0 = datetime(2026, 11, 25, 14, 45, 7, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 14, 50, 0, tzinfo=UTC)
FPS = 5.0
TAMPER = {"enabled": True, "min_duration_s": 1.0, "reference_after_s": 1.0, "cooldown_s": 60.0}


def run(frames: list[np.ndarray], scene: CameraScene) -> dict[int, AlertRecord]:
    monitor = TamperMonitor("cam-1", "hq", clock=lambda: NOW)
    masker = PrivacyMasker("cam-1")
    alerts = {}
    for i, frame in enumerate(frames):
        image = frame if not scene.privacy_masks else masker.masked(frame, scene)
        alert = monitor.check(
            image, lambda size: masker.keep(scene, size), pts_s=i / FPS,
            captured_at=T0 + timedelta(seconds=i / FPS), scene=scene,
        )  # fmt: skip
        if alert is not None:
            alerts[i] = alert
    return alerts


@pytest.mark.parametrize(("tamper", "kind"), [("blank", "blank"), ("blur", "defocus"), ("shift", "moved")])
def test_each_tamper_raises_camera_tamper_exactly_once(tamper: str, kind: str):
    # GIVEN 4 s of the normal view, 4 s tampered with, 4 s normal again, at 5 fps
    frames = render_tampered(60, tamper, (20, 39))
    # WHEN the monitor looks at every frame
    alerts = run(frames, CameraScene(tamper=TAMPER))
    # THEN one alert, 1 s (min_duration_s) into the tampered stretch, naming what it found
    assert list(alerts) == [25]
    alert = alerts[25]
    started_at = T0 + timedelta(seconds=4.0)
    assert alert == AlertRecord(
        alert_id=make_alert_id("cam-1", "camera_tamper", started_at, kind),
        camera_id="cam-1",
        site="hq",
        event_type="camera_tamper",
        severity=Severity.HIGH,
        score=alert.score,
        threshold=alert.threshold,
        started_at=started_at,
        frame_at=T0 + timedelta(seconds=5.0),
        detected_at=NOW,
        media_time_s=4.0,
        model_version=TAMPER_MODEL_VERSION,
        tamper=kind,
    )


def test_a_normal_view_and_a_disabled_check_raise_nothing():
    assert run(render_tampered(60, "blank", (60, 60)), CameraScene(tamper=TAMPER)) == {}
    assert run(render_tampered(60, "blank", (20, 39)), CameraScene()) == {}  # tamper is opt-in


def test_a_tamper_shorter_than_min_duration_and_one_within_the_cooldown_raise_nothing():
    short = render_tampered(60, "blank", (20, 23))  # 0.8 s
    assert run(short, CameraScene(tamper=TAMPER)) == {}
    twice = render_tampered(80, "blank", (20, 34))
    twice[50:65] = twice[20:35]  # covered again 3 s later: within the 60 s cooldown
    assert list(run(twice, CameraScene(tamper=TAMPER))) == [25]


def test_a_masked_area_is_left_out_of_the_statistics():
    # GIVEN a view blank except for its left third, which a privacy mask covers
    frames = render_tampered(30, "blank", (10, 29))
    for frame in frames[10:]:
        frame[:, :85] = np.random.default_rng(1).integers(0, 255, (144, 85, 3), dtype=np.uint8)
    mask = {"name": "street", "polygon": [[0, 0], [0.34, 0], [0.34, 1], [0, 1]]}
    # WHEN checked with and without the mask
    masked = run(frames, CameraScene(tamper=TAMPER, privacy_masks=[mask]))
    unmasked = run(frames, CameraScene(tamper=TAMPER))
    # THEN with the mask the rest is blank; without it the noise hides the blank (and is a moved view)
    assert [a.tamper for a in masked.values()] == ["blank"]
    assert "blank" not in [a.tamper for a in unmasked.values()]


def test_no_signal_alerts_once_per_silence_after_min_duration():
    clock = [NOW]
    monitor = TamperMonitor("cam-1", "hq", clock=lambda: clock[0])
    scene = CameraScene(tamper=TAMPER)
    seen = []
    for second, silent in enumerate([False, True, True, True, True, False, True]):
        clock[0] = NOW + timedelta(seconds=second)
        seen.append(monitor.check_signal(silent, scene))
    assert [a.tamper if a else None for a in seen] == [None, None, "no_signal", None, None, None, None]
    assert seen[2].started_at == NOW + timedelta(seconds=1)
