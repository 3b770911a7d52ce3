"""The whole loop, local: archive -> train -> serve -> worker -> Kinesis -> local ESM -> alert_lambda
-> SNS -> SQS, each stage its production module in its own process (`python -m local.demo`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.alert import AlertRecord
from local import demo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_short_clip_delivers_one_notification_with_every_field(short_demo_run):
    # GIVEN a still camera (0-8 s), an intruder in view 9-14 s, then still again until 20 s
    # WHEN the demo runs on it as fast as it can (the shared run, tests/e2e/conftest.py)
    out = short_demo_run.out
    # THEN it succeeds and one notification, for the intruder, reached the SQS subscription
    assert short_demo_run.code == 0, short_demo_run.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["alerts_published"] == 1
    assert summary["notifications_delivered"] == 1
    assert summary["ground_truth"]["notifications_while_empty"] == 0
    assert summary["frames_decoded"] >= 140
    assert 0 < summary["frames_analysed"] <= summary["frames_decoded"]
    [envelope] = read_jsonl(out / "notifications.jsonl")
    alert = AlertRecord.model_validate_json(envelope["Message"])
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"].endswith(":vigil-alerts")
    assert {k: v["Value"] for k, v in envelope["MessageAttributes"].items()} == {
        "severity": alert.severity.value, "site": "port-of-entry", "camera_id": "gate-2", "event_type": "scene_anomaly",
        "alert_id": alert.alert_id,
    }
    assert "gate-2" in envelope["Subject"] and "port-of-entry" in envelope["Subject"]
    assert (alert.camera_id, alert.site, alert.event_type, alert.schema_version) == (
        "gate-2", "port-of-entry", "scene_anomaly", "2")
    assert (alert.zone, alert.tamper, alert.armed, alert.notify) == (None, None, True, True)  # no scene drawn
    assert alert.score >= alert.threshold > 0
    assert 8.5 <= alert.media_time_s <= 14.0
    assert alert.started_at <= alert.frame_at <= alert.detected_at
    assert alert.regions, "the intruder's region is reported"
    assert alert.snapshot is not None and alert.snapshot.key.startswith("snapshots/camera=gate-2/")
    assert alert.model_version == summary["model_version"]


def test_missing_video_is_a_clear_error(tmp_path, capsys):
    code = demo.main(["--video", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"demo: VIDEO not found: {tmp_path / 'nope.mp4'}"


def test_undecodable_video_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    assert demo.main(["--video", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("demo: VIDEO cannot be decoded")


def test_port_in_use_is_a_clear_error(tmp_path, capsys, make_video):
    import socket

    video = make_video("v.mp4", n_frames=100)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert demo.main(["--video", str(video), "--inference-port", str(port), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"demo: port {port} on 127.0.0.1 is already in use; stop what holds it or pick another port")


def test_a_trained_model_is_served_without_archiving_or_training_again(short_demo_run, tmp_path, capsys):
    # GIVEN the model the shared run trained (as `make train` leaves out/model/model.tar.gz)
    assert short_demo_run.code == 0, short_demo_run.stdout
    model = short_demo_run.out / "model" / "model.tar.gz"
    video = Path(short_demo_run.summary["video"])
    out = tmp_path / "again"

    # WHEN the demo runs with it (make demo MODEL=…)
    code = demo.main(["--video", str(video), "--model", str(model), "--speed", "0", "--camera-id", "gate-2",
                      "--site", "port-of-entry", "--out", str(out)])

    # THEN nothing is archived or trained, the worker analyses the whole video with that model, and
    # the intruder is notified once, by it
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "==> [2/8] no archive: the model is given" in printed
    assert not (out / "channel").exists() and not (out / "logs" / "training.log").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["model_version"], summary["notifications_delivered"]) == (
        short_demo_run.summary["model_version"], 1)
    assert summary["frames_decoded"] >= 190  # from media time 0, not after the 5 s of training footage


def test_a_missing_model_is_a_clear_error(tmp_path, capsys, make_video):
    video = make_video("v.mp4", n_frames=100)
    code = demo.main(["--video", str(video), "--model", str(tmp_path / "nope.tar.gz"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"demo: MODEL not found: {tmp_path / 'nope.tar.gz'} (train one with `make train DATA=<your videos>`)")


def test_an_unreachable_camera_is_a_clear_error(tmp_path, capsys):
    # GIVEN a camera URL where nothing listens WHEN the demo starts on it THEN it says it cannot be reached
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"rtsp://127.0.0.1:{port}/stream1"
    assert demo.main(["--video", url, "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"demo: VIDEO cannot be reached (Connection refused: check the address (host name or IP) and port "
        f"(RTSP: 554), that the camera is on, and that this machine reaches its network): {url}")
