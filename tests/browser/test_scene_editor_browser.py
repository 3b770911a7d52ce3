"""The scene editor in a real browser (Debian's Chromium through Playwright, over a real uvicorn server
and a moto server seeded from the sample video): a supervisor draws a zone of 4 points over the
camera's latest snapshot, saves, reloads and sees it stored; a 2-point zone is refused with the field
named and nothing written. Screenshots go to out/console/ (and /tmp/vigil-scene-*.png)."""

from __future__ import annotations

import json

import pytest
from test_console_browser import CHROMIUM, LAUNCH_ARGS, OUT, TOKEN, _browser, console_url  # noqa: F401

from contracts.camera_scene_item import get_request, parse_scene
from local.stack import LocalStack

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
    pytest.mark.timeout(120),
]
sync_playwright = pytest.importorskip(
    "playwright.sync_api", reason="needs the playwright package"
).sync_playwright

POINTS = [(0.20, 0.55), (0.75, 0.55), (0.85, 0.95), (0.10, 0.95)]


def click_at(page, x: float, y: float) -> None:
    """Click the picture at fractions (x, y) of its width and height."""
    box = page.locator("#scene-svg").bounding_box()
    page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])


def test_a_supervisor_draws_a_zone_saves_it_and_a_two_point_zone_is_refused(
    console_url,  # noqa: F811
    local_stack: LocalStack,
) -> None:
    base, _ = console_url
    shots = OUT / "console"
    shots.mkdir(parents=True, exist_ok=True)
    dynamodb = local_stack.client("dynamodb")
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            # GIVEN the supervisor (the start-up token's operator) opens lobby-1's scene from the Cameras page
            page.goto(f"{base}/cameras?token={TOKEN}")
            page.click('tr[data-camera-id="lobby-1"] a.scene-link')
            page.wait_for_url(f"{base}/cameras/lobby-1/scene")
            page.wait_for_function("document.getElementById('scene-still').naturalWidth > 0")
            # WHEN they add a zone by clicking 4 points, close it on its first point, name it and save
            page.click("#new-zone")
            for x, y in POINTS:
                click_at(page, x, y)
            click_at(page, *POINTS[0])
            page.fill("#shape-name", "loading bay")
            page.select_option("#shape-severity", "high")
            page.screenshot(path="/tmp/vigil-scene-drawn.png", full_page=True)
            page.click("#save-scene")
            page.wait_for_url(f"{base}/cameras/lobby-1/scene?saved=1")
            # THEN after a reload the zone is listed and drawn, and it is the stored scene (revision 1)
            page.reload()
            assert page.inner_text("#shape-list").startswith("loading bay · intrusion · 4 points")
            assert page.locator("#scene-svg polygon.shape-zone").count() == 1
            item = dynamodb.get_item(**get_request(local_stack.names.state_table, "lobby-1", True))["Item"]
            scene = parse_scene(item["scene"]["S"])
            assert (item["revision"], scene.zones[0].name, scene.zones[0].severity) == (
                {"N": "1"},
                "loading bay",
                "high",
            )
            flat = [value for point in scene.zones[0].polygon for value in point]
            assert flat == pytest.approx([value for point in POINTS for value in point], abs=0.01)
            page.screenshot(path=str(shots / "scene-saved-1440.png"), full_page=True)
            page.screenshot(path="/tmp/vigil-scene-saved.png", full_page=True)
            # WHEN they add a second zone of 2 points only and save
            page.click("#new-zone")
            click_at(page, 0.30, 0.10)
            click_at(page, 0.60, 0.20)
            page.click("#close-shape")
            page.click("#save-scene")
            # THEN the page says which field is wrong, and the stored scene is still revision 1
            page.wait_for_selector("#scene-errors")
            assert "zones.1.polygon: a polygon needs at least 3 points, got 2" in page.inner_text(
                "#scene-errors"
            )
            # AND the zone it names is outlined and selected, ready to fix
            assert page.locator("#scene-svg .shape.faulty").count() == 1
            assert page.input_value("#shape-name") == "zone-1"
            page.screenshot(path=str(shots / "scene-refused-1440.png"), full_page=True)
            page.screenshot(path="/tmp/vigil-scene-refused.png", full_page=True)
            after = dynamodb.get_item(**get_request(local_stack.names.state_table, "lobby-1", True))["Item"]
            assert after["revision"] == {"N": "1"} and json.loads(after["scene"]["S"]) == json.loads(
                item["scene"]["S"]
            )
        finally:
            browser.close()


def test_the_schedule_form_writes_the_weekly_window(console_url, local_stack: LocalStack) -> None:  # noqa: F811
    base, _ = console_url
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{base}/cameras/dock-2/scene?token={TOKEN}")
            # WHEN the supervisor arms dock-2 on weeknights, London time, and disarms Christmas Day
            page.uncheck("#always-armed")
            page.fill("#schedule-tz", "Europe/London")
            page.click("#add-window")
            page.fill("#windows tr.window input[aria-label=from]", "21:30")
            page.fill("#windows tr.window input[aria-label=to]", "06:00")
            page.click("#add-exception")
            page.fill("#exceptions tr.exception input[type=date]", "2026-12-25")
            page.select_option("#exceptions tr.exception select", "false")
            page.click("#save-scene")
            page.wait_for_url(f"{base}/cameras/dock-2/scene?saved=1")
            page.screenshot(path=str(OUT / "console" / "scene-schedule-1280.png"), full_page=True)
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.goto(f"{base}/cameras/dock-2/scene?token={TOKEN}")
            phone.screenshot(path="/tmp/vigil-scene-390.png", full_page=True)
        finally:
            browser.close()
    # THEN the stored schedule is exactly that
    item = local_stack.client("dynamodb").get_item(
        **get_request(local_stack.names.state_table, "dock-2", True)
    )["Item"]
    schedule = parse_scene(item["scene"]["S"]).schedule
    assert schedule.model_dump(mode="json") == {
        "timezone": "Europe/London",
        "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "21:30", "end": "06:00"}],
        "exceptions": [{"date": "2026-12-25", "armed": False}],
    }
