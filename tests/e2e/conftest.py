"""One short run of the whole local loop (`python -m local.demo`), shared by the end-to-end tests
that read its results: the notifications, the summary, and the state it saved for the console."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from synthetic_video import render_scene, write_h264

from contracts.alert import AlertRecord
from local import demo


@dataclass(frozen=True)
class DemoRun:
    code: int
    out: Path
    stdout: str

    @property
    def summary(self) -> dict:
        return json.loads((self.out / "summary.json").read_text())

    @property
    def envelopes(self) -> list[dict]:
        """Each SNS message as the SQS subscription received it, in order of arrival."""
        return [json.loads(line) for line in (self.out / "notifications.jsonl").read_text().splitlines() if line]

    @property
    def alerts(self) -> list[AlertRecord]:
        """The notified alerts, oldest first."""
        notified = [AlertRecord.model_validate_json(e["Message"]) for e in self.envelopes]
        return sorted(notified, key=lambda a: a.started_at)


@pytest.fixture(scope="session")
def short_demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """GIVEN a 20 s camera (10 fps): a still room 0-9 s, an intruder in view 9-14 s, still again to 20 s;
    WHEN the whole loop runs on it once, as fast as it goes (archive 5 s, train, serve, worker ->
    Kinesis -> local ESM -> alert_lambda -> SNS/history), camera gate-2 at site port-of-entry."""
    root = tmp_path_factory.mktemp("short-demo")
    video = write_h264(root / "gate.mp4", render_scene(200, intruder=(90, 140)), fps=10)
    video.with_suffix(".empty.json").write_text(json.dumps({"tolerance_s": 0.5, "empty_ranges_s": [[0, 9], [14, None]]}))
    out = root / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = demo.main(["--video", str(video), "--speed", "0", "--train-seconds", "5", "--camera-id", "gate-2",
                          "--site", "port-of-entry", "--out", str(out)])
    return DemoRun(code, out, printed.getvalue())
