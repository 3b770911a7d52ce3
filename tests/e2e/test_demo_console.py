"""The operator console over the alerts of a real run of the local loop: the short demo run
(tests/e2e/conftest.py: worker -> Kinesis -> local ESM -> alert_lambda -> SNS, history table, snapshots
and clips in S3) saved its moto state; each test loads it into a fresh moto server and opens the
console on it, as `make console FROM_DEMO=out/demo` does."""

from __future__ import annotations

import io
import json
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import cv2
import httpx
import numpy as np
import pytest
from console_from_demo import CSRF, SEEN, review_in_console_from_demo
from starlette.testclient import TestClient

from archive.keys import feedback_key
from console.access import SiteAccess
from console.app import create_app
from console.cameras import read_statuses
from console.charts import TraceChart
from console.settings import ConsoleSettings
from console.store import AlertStore
from contracts.alert import AlertRecord
from contracts.score_trace import ScoreTrace, score_trace_key
from local.stack import LocalStack, free_port
from local.state import read_state, restore_state

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROW = re.compile(r'class="alert-row" data-alert-id="([0-9a-f-]+)"')
CAMERA_ROW = re.compile(r'class="camera-row" data-camera-id="([^"]+)"')
RECT = re.compile(r'<rect class="region" x="([0-9.e-]+)" y="([0-9.e-]+)" width="([0-9.e-]+)" height="([0-9.e-]+)"')
ORIGIN = "http://127.0.0.1:8080"


@dataclass
class Restored:
    stack: LocalStack
    s3: Any
    dynamodb: Any
    alerts: list[AlertRecord]  # the run's notified alerts, oldest first

    @property
    def bucket(self) -> str:
        return self.stack.names.bucket

    def manifest_lines(self) -> list[dict]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="manifests/")
        bodies = [self.s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read().decode()
                  for o in listing.get("Contents", [])]
        return [json.loads(raw) for body in bodies for raw in body.splitlines() if raw.strip()]


@pytest.fixture
def restored(short_demo_run, monkeypatch: pytest.MonkeyPatch) -> Iterator[Restored]:
    """GIVEN a fresh moto server holding what the short demo run saved (this process points at it)."""
    assert short_demo_run.code == 0, short_demo_run.stdout
    folder = short_demo_run.out / "state"
    with LocalStack(names=read_state(folder).names) as stack:
        restore_state(stack, folder)
        for key, value in stack.env().items():
            monkeypatch.setenv(key, value)
        yield Restored(stack, stack.client("s3"), stack.client("dynamodb"), short_demo_run.alerts)


@pytest.fixture
def client(restored: Restored) -> Iterator[TestClient]:
    """The console over the restored run, signed in as the local operator."""
    names = restored.stack.names
    settings = ConsoleSettings.model_validate({
        "history_table": names.alert_history_table, "audit_table": names.audit_table,
        "state_table": names.state_table, "archive_bucket": names.bucket, "token": "t" * 32, "secret": "s" * 32,
    })
    with TestClient(create_app(settings), base_url=ORIGIN, follow_redirects=False) as signed_in:
        assert signed_in.get(f"/alerts?token={settings.token}").status_code == 303
        yield signed_in


def test_demo_saves_each_notified_alert_with_its_history_row_snapshot_and_clip(short_demo_run) -> None:
    # THEN the run notified the intruder once, and found its history row, snapshot and clip before saving
    [alert] = short_demo_run.alerts
    assert short_demo_run.summary["console"] == {
        "state": str(short_demo_run.out / "state"), "first_alert_id": alert.alert_id,
        "alerts": 1, "in_history": 1, "snapshots": 1, "clips": 1, "score_traces": 1,
    }
    # AND the state holds the run's archive and tables, and nothing of Kinesis, SNS or SQS
    state = read_state(short_demo_run.out / "state")
    names = state.names
    # (the state table: the camera's status item, written by the worker)
    assert state.items == {names.alert_history_table: 1, names.idempotency_table: 1, names.state_table: 1,
                           names.audit_table: 0}
    # 1 training clip + the manifest + the alert's snapshot, clip and score trace
    assert state.objects == {names.bucket: 5}
    # AND the demo ends with the console command and the first alert's page, with the login token it saved
    saved = json.loads((short_demo_run.out / "console.json").read_text())
    out = short_demo_run.out
    assert short_demo_run.stdout.splitlines()[-3:] == [
        f"==> the console over this run's alerts: make console FROM_DEMO={out}",
        f"    (or: python -m local.console --from-demo {out})",
        f"    first alert: http://127.0.0.1:8080/alerts/{alert.alert_id}?token={saved['token']}",
    ]
    assert (out / "console.json").stat().st_mode & 0o777 == 0o600


def test_list_shows_the_alerts_of_the_run_as_notified(restored: Restored, client: TestClient) -> None:
    # WHEN the operator opens the list
    response = client.get("/alerts")
    # THEN it lists exactly the run's alerts, newest first
    assert response.status_code == 200
    assert ROW.findall(response.text) == [a.alert_id for a in reversed(restored.alerts)]
    assert ROW.findall(client.get("/alerts?site=port-of-entry&camera=gate-2").text) == ROW.findall(response.text)
    # AND each history row holds the alert exactly as SNS delivered it, not reviewed yet
    store = AlertStore(restored.dynamodb, restored.stack.names.alert_history_table, restored.stack.names.audit_table)
    rows = [store.get(a.alert_id, SiteAccess.everything()) for a in restored.alerts]
    assert [(row.alert, row.review) for row in rows] == [(a, None) for a in restored.alerts]


def test_alert_page_shows_the_snapshot_with_regions_and_plays_the_clip(short_demo_run, restored: Restored,
                                                                       client: TestClient) -> None:
    alert = restored.alerts[0]
    # WHEN the operator opens the alert's page
    response = client.get(f"/alerts/{alert.alert_id}")
    assert response.status_code == 200
    html = response.text
    # THEN the snapshot link serves the worker's JPEG of the camera's frame (256 x 144)
    snapshot_url = re.search(r'<img id="snapshot" src="([^"]+)"', html).group(1).replace("&amp;", "&")
    snapshot = httpx.get(client.get(snapshot_url).headers["location"])  # the console's route -> presigned S3
    assert snapshot.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(snapshot.content, np.uint8), cv2.IMREAD_COLOR).shape == (144, 256, 3)
    # AND the model's regions are drawn over it
    assert [tuple(float(v) for v in m) for m in RECT.findall(html)] == [(r.x, r.y, r.w, r.h) for r in alert.regions]
    # AND the clip link serves the archiver's MP4: 5 s before to 10 s after the event start, 10 fps
    clip_url = re.search(r'<video id="clip"[^>]* src="([^"]+)"', html).group(1).replace("&amp;", "&")
    clip = httpx.get(client.get(clip_url).headers["location"])
    assert clip.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(clip.content)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert 140 <= frames <= 160
    # AND the threshold and the version of the model the run trained are shown
    assert f"{alert.score:.3f}" in html and f"{alert.threshold:.3f}" in html
    assert alert.model_version == short_demo_run.summary["model_version"] and alert.model_version in html
    assert 'id="clip-missing"' not in html and 'id="snapshot-missing"' not in html
    # AND the score over time around the event is the worker's trace: analysed frames from 5 s before
    # to 10 s after the start, the alert's own frame over the threshold, drawn as the page's chart
    trace = ScoreTrace.model_validate_json(restored.s3.get_object(
        Bucket=alert.clip.bucket, Key=score_trace_key(alert.clip.key))["Body"].read())
    assert (trace.alert_id, trace.camera_id, trace.threshold, trace.model_version, trace.pre_roll_s,
            trace.post_roll_s) == (alert.alert_id, alert.camera_id, alert.threshold, alert.model_version, 5.0, 10.0)
    assert all(-5.0 <= t <= 10.0 for t, _ in trace.points) and 0.0 in {t for t, _ in trace.points}
    assert round(alert.score, 6) in {s for _, s in trace.points}
    assert TraceChart.of(trace.points, trace.threshold, 5.0, 10.0).svg() in html
    assert 'id="trace-missing"' not in html


def test_cameras_page_shows_the_camera_the_worker_analysed(restored: Restored, client: TestClient) -> None:
    # GIVEN the status item the run's worker left: stopped (the video ended), scored by the run's model
    alert = restored.alerts[0]
    [status], _ = read_statuses(restored.dynamodb, restored.stack.names.state_table, SiteAccess.everything())
    assert (status.camera_id, status.site, status.state, status.model_version, status.threshold) == (
        "gate-2", "port-of-entry", "stopped", alert.model_version, alert.threshold)
    assert alert.frame_at <= status.last_frame_at <= status.updated_at and status.lag_ms is not None
    # WHEN the operator opens the Cameras page
    html = client.get("/cameras").text
    # THEN the camera is listed with its state, last analysed frame, lag, today's alert, model and threshold
    assert CAMERA_ROW.findall(html) == ["gate-2"]
    row = html.split('data-camera-id="gate-2"')[1].split("</tr>")[0]
    assert '<span class="state state-stopped">stopped</span>' in row
    assert status.last_frame_at.strftime("%Y-%m-%d %H:%M:%S") in row and f"{status.lag_ms / 1000:.1f} s" in row
    assert ">1</a>" in row and alert.model_version in row and f"{alert.threshold:.3f}" in row


def test_clip_not_archived_yet_is_said_and_the_page_still_renders(restored: Restored, client: TestClient) -> None:
    # GIVEN the alert's clip is not cut yet (the archiver waits for the post-roll)
    alert = restored.alerts[0]
    restored.s3.delete_object(Bucket=alert.clip.bucket, Key=alert.clip.key)
    # WHEN its page is opened THEN it renders, with the snapshot, and says the clip is missing
    response = client.get(f"/alerts/{alert.alert_id}")
    assert response.status_code == 200
    assert '<p class="missing" id="clip-missing">clip not archived yet</p>' in response.text
    assert '<img id="snapshot"' in response.text


def test_false_alarm_review_writes_the_feedback_label_to_s3(restored: Restored, client: TestClient) -> None:
    # GIVEN the operator looks at the run's alert, whose clip is listed in the manifest with no events
    alert = restored.alerts[0]
    [before] = [line for line in restored.manifest_lines() if line.get("alert_id") == alert.alert_id]
    assert before["events"] == [] and before["source-ref"] == f"s3://{alert.clip.bucket}/{alert.clip.key}"
    page = client.get(f"/alerts/{alert.alert_id}").text
    token, seen = CSRF.search(page).group(1), SEEN.search(page).group(1)
    # WHEN they press "False alarm" (the form carries the review state it was shown with)
    response = client.post(f"/alerts/{alert.alert_id}/review",
                           data={"label": "false_alarm", "csrf_token": token, "seen": seen},
                           headers={"Origin": ORIGIN})
    # THEN the review is saved
    assert (response.status_code, response.headers["location"]) == (
        303, f"/alerts/{alert.alert_id}?reviewed=false_alarm")
    # AND the feedback label `python -m archive.feedback` writes is in S3
    label = json.loads(restored.s3.get_object(
        Bucket=restored.bucket, Key=feedback_key(alert.camera_id, alert.alert_id))["Body"].read())
    assert {k: v for k, v in label.items() if k != "labelled_at"} == {
        "schema_version": "1", "alert_id": alert.alert_id, "camera_id": "gate-2", "label": "false_alarm",
        "operator": "local-operator", "note": None,
    }
    # AND the alert clip's manifest line now carries a false_alarm event for the next training run
    [after] = [line for line in restored.manifest_lines() if line.get("alert_id") == alert.alert_id]
    assert {k: v for k, v in after.items() if k != "events"} == {k: v for k, v in before.items() if k != "events"}
    assert [event["label"] for event in after["events"]] == ["false_alarm"]
    # AND the list shows the review
    assert ROW.findall(client.get("/alerts?review=false_alarm").text) == [alert.alert_id]


def _read_until(proc: subprocess.Popen, marker: str, timeout_s: float = 60.0) -> list[str]:
    """The lines `proc` prints, up to the first that holds `marker`. A reader thread does the reading:
    select() on the pipe cannot see lines already read into the text wrapper's buffer (two lines
    printed together arrive in one read), so it would wait out the timeout for the second one."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, name="console-stdout", daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"no {marker!r} line from python -m console; it printed: {seen}")


def test_console_from_demo_serves_the_first_alert_url_the_demo_printed(short_demo_run) -> None:
    # GIVEN the URL the demo printed last
    printed = short_demo_run.stdout.splitlines()[-1].split("first alert: ", 1)[1]
    path = printed.removeprefix("http://127.0.0.1:8080")
    port = free_port()
    # WHEN the command it printed runs (on a free port rather than 8080)
    proc = subprocess.Popen([sys.executable, "-m", "local.console", "--from-demo", str(short_demo_run.out),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = _read_until(proc, "first alert:")
        # THEN the console prints the same page, and that page opens with the run's alert, snapshot and clip
        assert lines[-1] == f"    first alert:   http://127.0.0.1:{port}{path}"
        with httpx.Client(follow_redirects=True) as browser:
            page = browser.get(f"http://127.0.0.1:{port}{path}")
        [alert] = short_demo_run.alerts
        assert page.status_code == 200
        assert alert.alert_id in page.text and '<img id="snapshot"' in page.text and '<video id="clip"' in page.text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a console that ignores SIGTERM must not outlive the test
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()



def test_reviews_in_the_console_from_demo_are_saved_back_for_training(short_demo_run, tmp_path) -> None:
    # GIVEN a copy of the demo's output folder (the shared run stays as it is) and the console over it
    out = tmp_path / "demo"
    shutil.copytree(short_demo_run.out, out)
    [alert] = short_demo_run.alerts
    log = tmp_path / "console.log"
    # WHEN the operator marks the run's alert a false alarm, then stops the console (SIGTERM, as Ctrl+C)
    status, returncode = review_in_console_from_demo(out, alert.alert_id, "false_alarm", log)
    assert status == 303
    # THEN the console saved its world back to the demo's state folder, and said so
    printed = log.read_text()
    assert returncode == 0, printed
    assert f"==> saved this console's alerts and reviews back to {out / 'state'} (" in printed
    # AND the review is there: the feedback label, and the false_alarm event on the alert clip's manifest line
    bucket = out / "state" / "s3" / alert.clip.bucket
    assert json.loads((bucket / feedback_key(alert.camera_id, alert.alert_id)).read_text())["label"] == "false_alarm"
    # AND `make train DATA=<the folder>` learns the dismissed alert's clip as normal footage, once, with its label
    from training.data import load_clips

    clips, _ = load_clips(out, (48, 80))
    refs = [c.clip.source_ref for c in clips]
    assert len(refs) == len(set(refs))
    [dismissed] = [c for c in clips if c.clip.source_ref == f"s3://{alert.clip.bucket}/{alert.clip.key}"]
    assert bool(dismissed.is_false_alarm.any())
