"""The archive one run produces is a training channel as it is: clips, alert clips, manifests with
feedback labels, downloaded as SageMaker downloads an S3 channel, then `python -m training`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

from archive.archiver import Archiver, download_prefixes
from archive.clip_source import LocalClipSource
from archive.feedback import main as feedback
from archive.schedule import ScheduleConfig
from contracts.alert import AlertRecord, make_alert_id

EPOCH = datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_the_archive_trains_a_model_with_no_glue(local_stack, make_video, tmp_path):
    # GIVEN one run's archive: normal footage, an alert clip, and an operator's verdict on the alert
    video = make_video("cam.mp4", n_frames=120, intruder=(70, 100))
    s3 = local_stack.client("s3")
    archiver = Archiver("vigil-archive", s3)
    for start in (0.0, 3.0):
        archiver.archive(str(video), "cam-1", start, start + 3.0, media_epoch=EPOCH)
    started = datetime(2026, 11, 25, 8, 0, 7, tzinfo=UTC)
    alert = AlertRecord(
        alert_id=make_alert_id("cam-1", "scene_anomaly", started), camera_id="cam-1", site="hq",
        event_type="scene_anomaly", severity="high", score=0.9, threshold=0.5, started_at=started,
        frame_at=started, detected_at=started, media_time_s=7.0, model_version="m0",
    )
    archiver.archive_alert(LocalClipSource(str(video), EPOCH), alert, ScheduleConfig(pre_roll_s=2, post_roll_s=3))
    assert feedback([alert.alert_id, "--true-incident", "--operator", "ana"]) == 0
    # WHEN the channel is downloaded and `python -m training` runs on it
    channel = tmp_path / "train"
    assert download_prefixes("vigil-archive", ["clips/", "alerts/", "manifests/"], channel, s3) == 4
    model_dir = tmp_path / "model"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO_ROOT}
    result = subprocess.run(
        [sys.executable, "-m", "training", "--train", str(channel), "--model-dir", str(model_dir),
         "--epochs", "1", "--input-size", "32", "64", "--seed", "0"],
        check=False, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    # THEN it trains and exports a model for camera cam-1
    assert result.returncode == 0, result.stderr[-2000:]
    assert (model_dir / "model.tar.gz").is_file()
    assert "cam-1" in json.dumps(json.loads((model_dir / "config.json").read_text()))
