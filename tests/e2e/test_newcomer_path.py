"""A newcomer's path from a folder of their own videos to a model that learnt from their review (issue 21),
on generated footage, each step as the docs tell it: `make train DATA=<folder>`, `make demo MODEL=…`,
a review in `make console FROM_DEMO=…`, and `make train DATA=out/demo` again."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from console_from_demo import review_in_console_from_demo
from synthetic_video import render_scene, write_h264

from local import demo

REPO_ROOT = Path(__file__).resolve().parents[2]
WINDOWS = re.compile(r"train_windows=(\d+) holdout_windows=\d+ incident_windows=\d+ false_alarm_windows=(\d+)")


def train(data: Path, model_dir: Path) -> str:
    """`make train DATA=<data>` (two epochs: the path is under test, not the model's quality)."""
    result = subprocess.run(
        [sys.executable, "-m", "training", "--train", str(data), "--model-dir", str(model_dir), "--epochs", "2",
         "--threads", "2", "--camera-id", "gate-2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (model_dir / "model.tar.gz").is_file()
    return result.stdout


@pytest.mark.slow
def test_own_videos_to_a_model_that_learnt_the_review(tmp_path: Path) -> None:
    # GIVEN a folder of the newcomer's own footage: a still room, twice
    footage = tmp_path / "my-videos"
    footage.mkdir()
    for name in ("monday.mp4", "tuesday.mp4"):
        write_h264(footage / name, render_scene(80), fps=10)
    # WHEN they train on the folder (no manifest: it is written for them)
    train(footage, tmp_path / "model")
    # AND run the demo on a new recording with an intruder, with that model
    camera = write_h264(tmp_path / "wednesday.mp4", render_scene(120, intruder=(40, 80)), fps=10)
    out = tmp_path / "demo"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        code = demo.main(["--video", str(camera), "--model", str(tmp_path / "model" / "model.tar.gz"), "--speed", "0",
                          "--camera-id", "gate-2", "--site", "hq", "--out", str(out)])
    assert code == 0, printed.getvalue()[-3000:]
    alerts = [json.loads(json.loads(line)["Message"]) for line in (out / "notifications.jsonl").read_text().splitlines()]
    assert alerts, "the intruder was notified"
    alert_id = alerts[0]["alert_id"]
    # AND mark the alert a false alarm in the console over that run, then stop the console
    log = tmp_path / "console.log"
    status, returncode = review_in_console_from_demo(out, alert_id, "false_alarm", log)
    assert status == 303
    assert returncode == 0, log.read_text()[-2000:]
    # AND train again on the demo's folder
    printed_training = train(out, tmp_path / "model-2")
    # THEN the second model learnt the dismissed alert's footage as normal (its false-alarm windows)
    [(train_windows, false_alarm_windows)] = WINDOWS.findall(printed_training)
    assert int(train_windows) > 0 and int(false_alarm_windows) > 0, printed_training[-2000:]
