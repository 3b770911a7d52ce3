"""Live updates: `/events` over a real uvicorn server sends a new alert and a camera going dark to an
open page within 2 s, and only what the operator may see; triage moves to the next unreviewed alert."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from console_world import World, make_settings
from served_console import served_console

from alert_lambda.history import record_alert
from console.access import SiteAccess
from console.cameras import CameraStatus
from contracts.alert import utc_iso
from local.console_seed import _serialize

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def served(world: World) -> Iterator[tuple[str, object]]:
    settings = make_settings()
    with served_console(settings) as url:
        yield url, settings


def read_events(lines: Iterator[str], wanted: str, seconds: float) -> list[dict]:
    """The data of the first `wanted` event(s) on the stream's lines, waiting at most `seconds`."""
    found: list[dict] = []
    name = None
    deadline = time.monotonic() + seconds
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name == wanted:
            found.append(json.loads(line.removeprefix("data: ")))
        if found or time.monotonic() > deadline:
            break
    return found


def new_alert(world: World, camera: str = "lobby-1", site: str = "demo-hq"):
    template = world.by_camera(camera)[0]
    started = datetime.now(UTC) - timedelta(seconds=3)
    return template.model_copy(update={"alert_id": f"live-{camera}-{started:%H%M%S%f}", "started_at": started,
                                       "frame_at": started, "detected_at": started, "site": site})


def test_a_new_alert_reaches_an_open_stream_within_two_seconds(world: World, served) -> None:
    base, settings = served
    with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as operator:
        operator.get(f"/alerts?token={settings.token}")
        since = utc_iso(datetime.now(UTC))
        with operator.stream("GET", f"/events?since={since}") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            # GIVEN the stream's first poll told the page every camera's state
            assert {c["camera_id"] for c in read_events(lines, "camera", 5)} <= {"lobby-1", "dock-2"}
            # WHEN alert_lambda records a new alert
            alert = new_alert(world)
            record_alert(alert, "vigil-alert-history")
            recorded = time.monotonic()
            events = read_events(lines, "alert", 5)
            # THEN it is on the stream within 2 s, once
            assert time.monotonic() - recorded < 2.0
            assert [e["alert_id"] for e in events] == [alert.alert_id]
            assert events[0]["camera_id"] == "lobby-1" and events[0]["site"] == "demo-hq"


def test_a_camera_going_dark_is_sent(world: World, served) -> None:
    base, settings = served
    with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as operator:
        operator.get(f"/alerts?token={settings.token}")
        with operator.stream("GET", "/events") as stream:
            lines = stream.iter_lines()
            initial = [read_events(lines, "camera", 5)[0]["camera_id"] for _ in range(2)]
            assert sorted(initial) == ["dock-2", "lobby-1"]
            # WHEN dock-2's worker (seeded "silent") reports it is reconnecting
            silent = CameraStatus(camera_id="dock-2", site="demo-port", state="reconnecting", lag_ms=None,
                                  model_version="m", threshold=0.5, updated_at=datetime.now(UTC))
            world.dynamodb.put_item(TableName=world.stack.names.state_table, Item=_serialize(silent.to_item()))
            events = read_events(lines, "camera", 5)
    # THEN the change is sent, with what it was before
    assert [(e["camera_id"], e["state"], e["initial"]) for e in events] == [("dock-2", "reconnecting", False)]
    assert events[0]["was"] == "silent"


def test_a_site_limited_operator_is_not_sent_another_sites_alert(world: World) -> None:
    from console.live import LiveFeed
    from console.store import AlertStore

    store = AlertStore(world.dynamodb, "vigil-alert-history", "vigil-console-audit")
    feed = LiveFeed(store, world.dynamodb, world.stack.names.state_table, SiteAccess.parse("demo-hq"),
                    watermark=datetime.now(UTC), stale_after_s=60)
    feed.poll()
    port, hq = new_alert(world, "dock-2", "demo-port"), new_alert(world)
    record_alert(port, "vigil-alert-history")
    record_alert(hq, "vigil-alert-history")
    assert [data["alert_id"] for name, data in feed.poll() if name == "alert"] == [hq.alert_id]
    assert [name for name, _ in feed.poll()] == []  # sent once


def test_triage_next_walks_the_unreviewed_alerts_newest_first(world: World, client) -> None:
    newest_first = world.newest_first()
    first = client.get("/triage/next")
    assert first.status_code == 303 and first.headers["location"] == f"/alerts/{newest_first[0]}"
    html = client.get(first.headers["location"]).text
    form = {"csrf_token": re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1),
            "seen": re.search(r'name="seen" value="([^"]+)"', html).group(1)}
    # WHEN the operator reviews it with "then next" (what the f and t keys send)
    saved = client.post(f"/alerts/{newest_first[0]}/review", data={"label": "false_alarm", "then": "next", **form})
    moved = client.get(saved.headers["location"])
    # THEN they land on the next older unreviewed alert, told what was saved
    assert moved.headers["location"] == f"/alerts/{newest_first[1]}?done={newest_first[0]}"
    assert "Saved: false alarm on" in client.get(moved.headers["location"]).text
    assert 'id="older"' in html and 'id="newer"' not in html
