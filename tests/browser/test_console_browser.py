"""A real browser on the console: Debian's Chromium driven by Playwright over a real uvicorn server and
a moto server seeded with alerts cut from the bundled sample video.

It signs in with the start-up token, finds an alert in the list, sees the snapshot with its regions,
plays the clip (the video element reaches readyState >= 2), clicks "false alarm", sees the review in
the list, and finds the label in S3. Screenshots of each page go to out/console/ (and the alert page
to out/console.png). Skipped, with the reason, when /usr/bin/chromium or Playwright is missing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from archive.keys import feedback_key
from console.app import create_app
from console.settings import ConsoleSettings
from local.console_seed import create_console_tables, seed
from local.stack import LocalStack, free_port

CHROMIUM = Path("/usr/bin/chromium")
OUT = Path(__file__).resolve().parents[2] / "out"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-sync"]
TOKEN = "browser-test-token-0123456789abcdef"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install -y chromium)"),
    pytest.mark.timeout(120),
]
sync_playwright = pytest.importorskip("playwright.sync_api", reason="needs the playwright package").sync_playwright


@pytest.fixture
def console_url(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list]]:
    monkeypatch.setenv("VIGIL_ALERT_HISTORY_TABLE", "vigil-alert-history")
    dynamodb, s3 = local_stack.client("dynamodb"), local_stack.client("s3")
    create_console_tables(dynamodb, "vigil-alert-history", "vigil-console-audit")
    alerts = seed(s3, dynamodb, bucket=local_stack.names.bucket, history_table="vigil-alert-history",
                  state_table=local_stack.names.state_table)
    settings = ConsoleSettings(token=TOKEN, local_operator="night-shift")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="console", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "console did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", sorted(alerts, key=lambda a: a.started_at)
    server.should_exit = True
    thread.join(timeout=10)


def test_operator_reviews_an_alert_in_chromium(console_url, local_stack: LocalStack) -> None:
    base, alerts = console_url
    target = [a for a in alerts if a.camera_id == "lobby-1"][-2]  # archived clip, people in view
    shots = OUT / "console"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            # GIVEN the operator opened the URL printed at start-up
            page.goto(f"{base}/alerts?token={TOKEN}")
            assert page.url == f"{base}/alerts"
            assert page.locator("tr.alert-row").count() == len(alerts)
            page.screenshot(path=str(shots / "alerts.png"), full_page=True)
            # WHEN they open the alert from the list
            page.click(f'tr[data-alert-id="{target.alert_id}"] a')
            page.wait_for_url(f"{base}/alerts/{target.alert_id}")
            # THEN the snapshot is loaded with its regions drawn over it
            page.wait_for_function("document.getElementById('snapshot').complete")
            assert page.evaluate("document.getElementById('snapshot').naturalWidth") == 768
            assert page.locator("svg.regions rect.region").count() == len(target.regions) >= 1
            box = page.locator("svg.regions rect.region").first.bounding_box()
            image = page.locator("#snapshot").bounding_box()
            assert box["width"] == pytest.approx(target.regions[0].w * image["width"], abs=3)  # + stroke
            # AND the clip plays in the browser
            page.wait_for_function("document.getElementById('clip').readyState >= 2", timeout=20000)
            page.screenshot(path=str(shots / "alert.png"), full_page=True)
            page.screenshot(path=str(OUT / "console.png"), full_page=True)
            # WHEN they press "false alarm"
            page.click("button.btn-false")
            page.wait_for_url(f"{base}/alerts/{target.alert_id}?reviewed=false_alarm")
            assert "Review saved: false alarm" in page.inner_text("p.notice")
            # THEN the list shows the review, who and when
            page.goto(f"{base}/alerts")
            review = page.inner_text(f'tr[data-alert-id="{target.alert_id}"] td.review')
            assert review.startswith("false alarm by night-shift at ")
            page.screenshot(path=str(shots / "alerts-reviewed.png"), full_page=True)
            page.goto(f"{base}/cameras")
            assert page.locator("tr.camera-row").count() == 2
            page.screenshot(path=str(shots / "cameras.png"), full_page=True)
        finally:
            browser.close()
    # AND the training label is in S3
    body = local_stack.client("s3").get_object(Bucket=local_stack.names.bucket,
                                               Key=feedback_key(target.camera_id, target.alert_id))["Body"].read()
    assert json.loads(body)["label"] == "false_alarm"
    assert json.loads(body)["operator"] == "night-shift"
