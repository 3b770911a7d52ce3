"""A real browser on the console: Debian's Chromium driven by Playwright over a real uvicorn server and
a moto server seeded with alerts cut from the bundled sample video.

It signs in with the start-up token, finds an alert in the list, sees the snapshot with its regions,
plays the clip (the video element reaches readyState >= 2), clicks "false alarm", sees the review in
the list, and finds the label in S3. Screenshots of each page go to out/console/ (and the alert page
to out/console.png). Skipped, with the reason, when /usr/bin/chromium or Playwright is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from served_console import served_console

from archive.keys import feedback_key
from console.settings import ConsoleSettings
from local.console_seed import create_console_tables, seed
from local.stack import LocalStack

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
    with running_console("night-shift") as url:
        yield url, sorted(alerts, key=lambda a: a.started_at)


def running_console(operator: str):
    """A console (one task behind the load balancer) signed into as `operator`, over this test's store."""
    return served_console(ConsoleSettings(token=TOKEN, local_operator=operator), name=f"console-{operator}")


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


def _browser(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)


def _live_alert(alerts: list, camera: str = "dock-2"):
    from datetime import UTC, datetime, timedelta

    template = next(a for a in alerts if a.camera_id == camera)
    started = datetime.now(UTC) - timedelta(seconds=2)
    return template.model_copy(update={"alert_id": f"live-{started:%H%M%S%f}", "started_at": started,
                                       "frame_at": started, "detected_at": started})


def test_a_new_alert_appears_live_in_an_open_list(console_url) -> None:
    from alert_lambda.history import record_alert

    base, alerts = console_url
    shots = OUT / "console"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            # GIVEN the operator has the list open and the live stream connected
            page.goto(f"{base}/alerts?token={TOKEN}")
            page.wait_for_selector("body.live-on", timeout=10000)
            assert page.locator("tr.alert-row").count() == len(alerts)
            # WHEN alert_lambda records a new alert
            alert = _live_alert(alerts)
            record_alert(alert, "vigil-alert-history")
            # THEN its row appears at the top within 2 s, without a reload, with a banner linking to it
            page.wait_for_selector(f'tr.alert-row[data-alert-id="{alert.alert_id}"]', timeout=2000)
            assert page.locator("tr.alert-row").first.get_attribute("data-alert-id") == alert.alert_id
            assert "New high scene_anomaly on dock-2" in page.inner_text("#live-log") or \
                "on dock-2 @demo-port" in page.inner_text("#live-log")
            page.screenshot(path=str(shots / "alerts-live-1440.png"))
            # AND on another page the unread counter counts it
            page.goto(f"{base}/cameras")
            page.wait_for_selector("body.live-on", timeout=10000)
            second = _live_alert(alerts, "lobby-1")
            record_alert(second, "vigil-alert-history")
            page.wait_for_selector("#unread:not([hidden])", timeout=2000)
            assert page.inner_text("#unread") == "1 new"
            assert page.title().startswith("(1) ")
            page.screenshot(path=str(shots / "cameras-live-1440.png"), full_page=True)
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.goto(f"{base}/alerts?token={TOKEN}")
            phone.screenshot(path=str(shots / "alerts-390.png"), full_page=True)
            phone.goto(f"{base}/alerts/{alerts[-2].alert_id}")
            phone.screenshot(path=str(shots / "alert-390.png"), full_page=True)
            phone.goto(f"{base}/cameras")
            phone.screenshot(path=str(shots / "cameras-390.png"), full_page=True)
        finally:
            browser.close()


def test_triage_three_alerts_by_keyboard_and_a_stale_form_is_refused(console_url, local_stack: LocalStack) -> None:
    base, alerts = console_url
    newest_first = [a.alert_id for a in sorted(alerts, key=lambda a: a.started_at, reverse=True)]
    shots = OUT / "console"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            page.goto(f"{base}/alerts?token={TOKEN}")
            # GIVEN a second tab that loaded the third alert while it was unreviewed
            stale = context.new_page()
            stale.goto(f"{base}/alerts/{newest_first[2]}")
            # WHEN the operator triages by keyboard alone: ? (help), n (next unreviewed), f, t, f
            page.keyboard.press("?")
            assert page.locator("#help").is_visible()
            page.screenshot(path=str(shots / "help-1440.png"))
            page.keyboard.press("Escape")
            page.keyboard.press("j")
            page.keyboard.press("j")
            assert page.locator("tr.alert-row.selected").get_attribute("data-alert-id") == newest_first[1]
            page.keyboard.press("k")
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/alerts/{newest_first[0]}")
            for key, alert_id, following in (("f", newest_first[0], newest_first[1]),
                                             ("t", newest_first[1], newest_first[2]),
                                             ("f", newest_first[2], newest_first[3])):
                page.wait_for_selector("form.review")
                page.keyboard.press(key)
                page.wait_for_url(f"{base}/alerts/{following}?done={alert_id}")
            page.screenshot(path=str(shots / "triage-1440.png"), full_page=True)
            page.goto(f"{base}/alerts")
            reviews = [page.inner_text(f'tr[data-alert-id="{a}"] td.review').split(" by ")[0] for a in newest_first[:4]]
            # THEN the three are reviewed, the fourth is not
            assert reviews == ["false alarm", "true incident", "false alarm", "not reviewed"]
            # AND the stale tab's review is refused with a 409 that says what changed
            with stale.expect_response(lambda r: r.url.endswith("/review")) as answer:
                stale.click("button.btn-incident")
            assert answer.value.status == 409
            assert 'you saw "not reviewed", it is now "false alarm by night-shift' in stale.inner_text("main")
            stale.screenshot(path=str(shots / "stale-409-1440.png"), full_page=True)
        finally:
            browser.close()
    body = local_stack.client("s3").get_object(Bucket=local_stack.names.bucket,
                                               Key=feedback_key(alerts[0].camera_id, newest_first[2]))
    assert json.loads(body["Body"].read())["label"] == "false_alarm"


def test_two_consoles_on_one_store_see_each_others_reviews_and_refuse_a_stale_one(
    console_url, local_stack: LocalStack
) -> None:
    # GIVEN two consoles (two tasks behind the load balancer) over the same tables and bucket
    base_a, alerts = console_url
    newest_alert = max(alerts, key=lambda a: a.started_at)
    newest = newest_alert.alert_id
    with running_console("day-shift") as base_b, sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            night = browser.new_page(viewport={"width": 1440, "height": 900})
            night.goto(f"{base_a}/alerts?token={TOKEN}")
            day = browser.new_page(viewport={"width": 1440, "height": 900})
            day.goto(f"{base_b}/alerts?token={TOKEN}")
            day.goto(f"{base_b}/alerts/{newest}")
            # WHEN the night shift marks the alert a false alarm on console A
            night.goto(f"{base_a}/alerts/{newest}")
            night.wait_for_selector("form.review")
            night.click("button.btn-false")
            night.wait_for_url(f"{base_a}/alerts/{newest}*")
            # THEN the day shift's form on console B, loaded before, is refused with what changed
            with day.expect_response(lambda r: r.url.endswith("/review")) as answer:
                day.click("button.btn-incident")
            assert answer.value.status == 409
            assert 'it is now "false alarm by night-shift' in day.inner_text("main")
            # AND console B shows the review once reloaded
            day.goto(f"{base_b}/alerts")
            assert day.inner_text(f'tr[data-alert-id="{newest}"] td.review').startswith("false alarm by night-shift")
        finally:
            browser.close()
    # AND the training label is the night shift's: the refused review did not overwrite it
    body = local_stack.client("s3").get_object(Bucket=local_stack.names.bucket,
                                               Key=feedback_key(newest_alert.camera_id, newest))
    label = json.loads(body["Body"].read())
    assert (label["label"], label["operator"]) == ("false_alarm", "night-shift")
