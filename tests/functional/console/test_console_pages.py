"""The console's pages over a seeded moto world: list, filters, alert page media, cameras, errors."""

from __future__ import annotations

import re

import av
import cv2
import httpx
import numpy as np
import pytest
from console_world import World

from console.cameras import CameraStatus
from console.charts import TraceChart
from contracts.alert import utc_iso
from contracts.score_trace import ScoreTrace, score_trace_key
from local.console_seed import _serialize

ROW = re.compile(r'class="alert-row" data-alert-id="([0-9a-f-]+)"')
RECT = re.compile(r'<rect class="region" x="([0-9.e-]+)" y="([0-9.e-]+)" width="([0-9.e-]+)" height="([0-9.e-]+)"')
CAMERA_ROW = re.compile(r'class="camera-row" data-camera-id="([^"]+)"')


def listed(html: str) -> list[str]:
    return ROW.findall(html)


def test_alert_list_shows_every_alert_newest_first(world: World, client) -> None:
    # WHEN the operator opens the list
    response = client.get("/alerts")
    # THEN every seeded alert is there, newest first
    assert response.status_code == 200
    assert listed(response.text) == world.newest_first()


def test_alert_list_filters_by_camera_site_severity_review_and_dates(world: World, client) -> None:
    today = world.alerts[-1].started_at.date().isoformat()
    assert listed(client.get("/alerts?camera=lobby-1").text) == world.newest_first(camera="lobby-1")
    assert listed(client.get("/alerts?site=demo-port").text) == world.newest_first(site="demo-port")
    medium = [a.alert_id for a in reversed(world.alerts) if a.severity.value == "medium"]
    assert listed(client.get("/alerts?severity=medium").text) == medium
    assert listed(client.get(f"/alerts?date_from={today}&date_to={today}").text) == world.newest_first()
    assert listed(client.get("/alerts?date_to=2001-01-01").text) == []
    assert listed(client.get("/alerts?event_type=tailgating").text) == []
    assert listed(client.get("/alerts?review=false_alarm").text) == []
    assert listed(client.get("/alerts?review=unreviewed&camera=dock-2").text) == world.newest_first(camera="dock-2")


def test_bad_filter_is_a_400_page_that_says_which(client) -> None:
    response = client.get("/alerts?severity=apocalyptic")
    assert response.status_code == 400
    assert "severity" in response.text


def test_alert_page_shows_snapshot_with_regions_clip_score_threshold_and_model(world: World, client) -> None:
    # GIVEN an alert whose clip is archived
    alert = world.by_camera("lobby-1")[1]
    # WHEN its page is opened
    response = client.get(f"/alerts/{alert.alert_id}")
    assert response.status_code == 200
    html = response.text
    # THEN the snapshot link serves the alert's real JPEG (the sample's 768x432 frame)
    snapshot_url = re.search(r'<img id="snapshot" src="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert snapshot_url == f"/alerts/{alert.alert_id}/media/snapshot"  # the console's, not S3's
    jpeg = httpx.get(client.get(snapshot_url).headers["location"]).content
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (432, 768, 3)
    # AND every region of the alert is drawn over it, in normalised coordinates
    drawn = [tuple(float(v) for v in m) for m in RECT.findall(html)]
    assert drawn == [(r.x, r.y, r.w, r.h) for r in alert.regions]
    assert len(drawn) >= 1
    # AND the clip link serves an MP4 that decodes
    clip_url = re.search(r'<video id="clip"[^>]* src="([^"]+)"', html).group(1).replace("&amp;", "&")
    with av.open(_download(client.get(clip_url).headers["location"])) as container:
        assert sum(1 for _ in container.decode(video=0)) >= 50
    # AND the score chart, the threshold and the model version are there
    assert '<svg class="chart"' in html and "threshold 0.500" in html
    assert f"{alert.score:.3f}" in html and "seed:background-difference" in html


def _download(url: str):
    import io

    return io.BytesIO(httpx.get(url).content)


def test_newest_alert_says_clip_not_archived_yet(world: World, client) -> None:
    newest = world.alerts[-1]
    html = client.get(f"/alerts/{newest.alert_id}").text
    assert '<p class="missing" id="clip-missing">clip not archived yet</p>' in html
    assert '<img id="snapshot"' in html


def test_missing_snapshot_still_renders_and_says_so(world: World, client) -> None:
    # GIVEN an alert whose snapshot object is gone
    alert = world.alerts[0]
    world.s3.delete_object(Bucket=alert.snapshot.bucket, Key=alert.snapshot.key)
    # WHEN its page is opened THEN it renders and says what is missing
    response = client.get(f"/alerts/{alert.alert_id}")
    assert response.status_code == 200
    assert f"snapshot not found in s3://{alert.snapshot.bucket}/{alert.snapshot.key}" in response.text


def test_unknown_alert_is_a_404_page(client) -> None:
    response = client.get("/alerts/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert "no alert 00000000-0000-0000-0000-000000000000" in response.text


def test_cameras_page_shows_state_lag_alerts_today_model_and_threshold(world: World, client) -> None:
    # GIVEN dock-2's worker stopped writing its status two minutes ago
    stale = CameraStatus(camera_id="dock-2", site="demo-port", state="analysing", lag_ms=1200.0,
                         model_version="m-7", threshold=0.42, updated_at=world.alerts[0].started_at)
    world.dynamodb.put_item(TableName=world.stack.names.state_table, Item=_serialize(stale.to_item()))
    html = client.get("/cameras").text
    assert CAMERA_ROW.findall(html) == ["lobby-1", "dock-2"] or CAMERA_ROW.findall(html) == ["dock-2", "lobby-1"]
    lobby = html.split('data-camera-id="lobby-1"')[1].split("</tr>")[0]
    dock = html.split('data-camera-id="dock-2"')[1].split("</tr>")[0]
    assert "analysing" in lobby and "0.4 s" in lobby and ">5</a>" in lobby and "0.500" in lobby
    assert "no heartbeat" in dock and "1.2 s" in dock and ">2</a>" in dock and "m-7" in dock and "0.420" in dock
    last = world.by_camera("lobby-1")[-1]
    assert last.frame_at.strftime("%Y-%m-%d %H:%M:%S") in lobby


def test_healthz_needs_no_sign_in(console_client) -> None:
    assert console_client(sign_in=False).get("/healthz").text == "ok"


def test_no_scan_of_the_history_table_when_listing(world: World, client) -> None:
    # GIVEN a record of every DynamoDB operation the console makes
    calls: list[tuple[str, str]] = []
    console = client.app.state.console
    console.dynamodb.meta.events.register(
        "provide-client-params.dynamodb.*", lambda model, params, **_: calls.append((model.name, params["TableName"])))
    # WHEN the operator pages through lists and opens an alert
    client.get("/alerts")
    client.get("/alerts?site=demo-hq")
    client.get("/alerts?camera=dock-2")
    client.get(f"/alerts/{world.alerts[0].alert_id}")
    # THEN only key queries and a key read were made on the history (the small state table's camera
    # statuses are scanned for the filters' camera and site choices)
    assert {name for name, table in calls if table == "vigil-alert-history"} == {"Query", "GetItem"}
    assert {table for name, table in calls if name == "Scan"} == {world.stack.names.state_table}
    assert utc_iso(world.alerts[0].started_at)  # the world is dated


@pytest.mark.parametrize(
    ("access", "flt", "expected"),
    [
        ("*", {}, lambda w: w.newest_first()),  # every site: GSI by-month
        ("demo-hq,demo-port", {}, lambda w: w.newest_first()),  # two sites: two by-site queries merged
        ("*", {"camera": "lobby-1"}, lambda w: w.newest_first(camera="lobby-1")),  # the table's own key
        ("*", {"severity": "high"}, lambda w: [a.alert_id for a in reversed(w.alerts) if a.severity.value == "high"]),
    ],
)
def test_pages_of_two_walk_every_alert_once_in_order(world: World, access, flt, expected) -> None:
    from console.access import SiteAccess
    from console.store import AlertFilter, AlertStore

    store = AlertStore(world.dynamodb, "vigil-alert-history", "vigil-console-audit")
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = store.list(SiteAccess.parse(access), AlertFilter(cursor=cursor, **flt), page_size=2)
        assert len(page.rows) <= 2
        seen.extend(row.alert.alert_id for row in page.rows)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected(world)


def test_next_page_link_carries_the_filters(world: World, client, monkeypatch) -> None:
    monkeypatch.setattr("console.app.PAGE_SIZE", 3)
    first = client.get("/alerts?camera=lobby-1")
    link = re.search(r'<a class="next" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    second = client.get(link)
    assert "camera=lobby-1" in link
    assert listed(first.text) + listed(second.text) == world.newest_first(camera="lobby-1")


def test_alert_page_draws_the_score_trace_archived_next_to_the_clip(world: World, client) -> None:
    # GIVEN an alert whose clip is archived, and its score trace next to it (gated frames left out)
    alert = world.by_camera("lobby-1")[1]
    trace = ScoreTrace(
        alert_id=alert.alert_id, camera_id=alert.camera_id, threshold=alert.threshold,
        model_version=alert.model_version, pre_roll_s=5.0, post_roll_s=10.0,
        points=[(-5.0, 0.1), (-4.8, 0.12), (-1.0, 0.2), (0.0, alert.score), (0.2, 0.7), (9.8, 0.3)],
    )
    world.s3.put_object(Bucket=alert.clip.bucket, Key=score_trace_key(alert.clip.key),
                        Body=trace.model_dump_json().encode(), ContentType="application/json")
    # WHEN its page is opened
    html = client.get(f"/alerts/{alert.alert_id}").text
    # THEN the chart is the trace's: its points, the threshold, the alert start, seconds on the axis
    chart = re.search(r'<svg class="chart trace".*?</svg>', html).group(0)
    assert chart == TraceChart.of(trace.points, trace.threshold, 5.0, 10.0).svg()
    # (three runs between the gaps; the last, one frame, is a dot alone)
    assert chart.count("<circle") == 6 and chart.count("<polyline") == 2
    assert "alert start" in chart and "seconds from the alert start" in chart and "threshold 0.500" in chart
    assert f"Model {alert.model_version},\n  6 frames." in html
    assert 'id="trace-missing"' not in html


def test_alert_page_says_when_the_score_trace_is_not_archived_or_unreadable(world: World, client) -> None:
    # GIVEN an alert with its clip but no trace yet, and one whose trace is not a score trace
    no_trace, bad = world.by_camera("lobby-1")[0], world.by_camera("lobby-1")[2]
    world.s3.delete_object(Bucket=no_trace.clip.bucket, Key=score_trace_key(no_trace.clip.key))  # the seed wrote one
    world.s3.put_object(Bucket=bad.clip.bucket, Key=score_trace_key(bad.clip.key), Body=b'{"points": "?"}')
    # WHEN their pages are opened THEN they render and say so, and the clip is still there
    html = client.get(f"/alerts/{no_trace.alert_id}").text
    assert '<p class="missing" id="trace-missing">score trace not archived yet</p>' in html
    assert '<video id="clip"' in html and '<svg class="chart trace"' not in html
    html = client.get(f"/alerts/{bad.alert_id}").text
    assert ('<p class="missing" id="trace-missing">score trace unreadable (not a schema 1 score trace)</p>'
            in html)


def _count_queries(client) -> list[str]:
    calls: list[str] = []
    client.app.state.console.dynamodb.meta.events.register(
        "before-call.dynamodb.Query", lambda model, **_: calls.append(model.name))
    return calls


@pytest.mark.parametrize("date_from", ["0001-01-01", "1900-01-01"])
def test_a_date_before_any_history_is_a_400_not_thousands_of_queries(client, date_from: str) -> None:
    # GIVEN (S1) a start date centuries back: one query per month was ~24,300 queries, 97.7 s
    calls = _count_queries(client)
    # WHEN the operator lists from it
    response = client.get(f"/alerts?date_from={date_from}&event_type=nothing")
    # THEN it is a 400 that says why, and no query was made
    assert response.status_code == 400
    assert "date_from: Value error, must be on or after 2000-01-01" in response.text
    assert calls == []


def test_a_long_range_that_matches_nothing_stops_at_the_query_budget_and_says_how_far(world: World, client) -> None:
    from console.store import MAX_QUERIES_PER_LIST

    # GIVEN a range of 26 years over every site (GSI by-month: one partition per month)
    calls = _count_queries(client)
    # WHEN nothing matches
    first = client.get("/alerts?date_from=2000-01-01&event_type=nothing")
    # THEN the page stops at the budget, says how far back it searched and links further back
    assert first.status_code == 200
    assert len(calls) == MAX_QUERIES_PER_LIST
    searched = re.search(r"Searched back to (\d{4}-\d{2}-\d{2}) in this request", first.text).group(1)
    link = re.search(r'search further back →', first.text)
    assert link is not None and searched > "2000-01-01"
    more = re.search(r'<a href="(/alerts\?[^"]+)">search further back', first.text).group(1).replace("&amp;", "&")
    # AND following the link goes on from there, again within the budget
    calls.clear()
    second = client.get(more)
    assert second.status_code == 200 and len(calls) <= MAX_QUERIES_PER_LIST
    assert re.search(r"Searched back to (\d{4}-\d{2}-\d{2})", second.text).group(1) < searched


@pytest.mark.parametrize("cursor", ["zzz", "2026-13-45", "2026-13-45T00:00:00.000Z#x", "2026-01-01", "%00" * 3])
def test_a_bad_cursor_is_a_400_with_the_security_headers(client, cursor: str, caplog) -> None:
    # GIVEN (S3) a cursor that is no `sk` of this listing: it was a bare 500 with a traceback
    response = client.get(f"/alerts?cursor={cursor}")
    # THEN it is the console's 400 page, with the headers every page has
    assert response.status_code == 400
    assert "bad filter: cursor" in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "Traceback" not in caplog.text


def test_dates_the_wrong_way_round_are_a_400(client) -> None:
    response = client.get("/alerts?date_from=2026-02-01&date_to=2026-01-01")
    assert response.status_code == 400
    assert "date_from is after date_to" in response.text


def test_cameras_page_url_encodes_the_camera_in_its_alerts_today_link(world: World, client) -> None:
    # GIVEN (S6) a camera whose id has characters that mean something in a query string
    odd = CameraStatus(camera_id="gate 3&site=x/ü", site="demo-hq", state="analysing", lag_ms=100.0,
                       model_version="m", threshold=0.5, updated_at=world.alerts[-1].started_at)
    world.dynamodb.put_item(TableName=world.stack.names.state_table, Item=_serialize(odd.to_item()))
    html = client.get("/cameras").text
    row = html.split('data-camera-id="gate 3&amp;site=x/ü"')[1].split("</tr>")[0]
    link = re.search(r'<a href="(/alerts\?[^"]+)"', row).group(1)
    assert link.startswith("/alerts?camera=gate+3%26site%3Dx%2F%C3%BC&amp;date_from=")


def test_times_are_in_the_sites_time_zone_with_utc_on_hover(world: World, console_client) -> None:
    from zoneinfo import ZoneInfo

    # GIVEN demo-hq is in Paris; demo-port has no zone configured
    client = console_client(site_timezones={"demo-hq": "Europe/Paris"})
    hq, port = world.by_camera("lobby-1")[0], world.by_camera("dock-2")[0]
    html = client.get("/alerts").text
    # THEN an HQ alert shows Paris time with its zone, and its UTC time on hover; the port's is UTC
    paris = hq.started_at.astimezone(ZoneInfo("Europe/Paris"))
    utc = utc_iso(hq.started_at)
    expected = (f'<time class="t" datetime="{utc}" title="{utc.replace("T", " ").replace("Z", " UTC")}">'
                f'{paris:%Y-%m-%d %H:%M:%S} <span class="tz">{paris.tzname()}</span></time>')
    assert expected in html
    assert f'{port.started_at:%Y-%m-%d %H:%M:%S} <span class="tz">UTC</span>' in html


def test_filters_offer_the_known_sites_cameras_and_event_types(client) -> None:
    html = client.get("/alerts").text
    assert '<option value="demo-hq"' in html and '<option value="demo-port"' in html
    assert re.findall(r'<datalist id="known-cameras">(.*?)</datalist>', html) == [
        '<option value="dock-2"><option value="lobby-1">']
    assert '<option value="scene_anomaly">' in html


def test_seeded_alerts_have_score_traces_over_their_clip_range(world: World, client) -> None:
    # GIVEN the seed (what `make console` shows) - the newest alert's clip is not cut, so it has no trace yet
    archived, uncut = world.alerts[0], max(world.alerts, key=lambda a: a.started_at)
    body = world.s3.get_object(Bucket=archived.clip.bucket, Key=score_trace_key(archived.clip.key))["Body"].read()
    trace = ScoreTrace.model_validate_json(body)
    assert trace.alert_id == archived.alert_id and (trace.pre_roll_s, trace.post_roll_s) == (5.0, 10.0)
    assert trace.points[0][0] >= -5.0 and trace.points[-1][0] <= 10.0 and len(trace.points) >= 20
    assert '<svg class="chart trace"' in client.get(f"/alerts/{archived.alert_id}").text
    assert 'score trace not archived yet' in client.get(f"/alerts/{uncut.alert_id}").text


def test_media_links_need_a_session_and_the_s3_link_is_short_lived(world: World, client, console_client) -> None:
    from console.access import SiteAccess

    alert = world.by_camera("dock-2")[0]
    # GIVEN the media route of an alert's snapshot
    path = f"/alerts/{alert.alert_id}/media/snapshot"
    # THEN a signed-in operator is sent to a presigned S3 link that lives 2 minutes
    response = client.get(path)
    assert response.status_code == 303
    assert "X-Amz-Expires=120" in response.headers["location"]
    # AND without a session it is a 401, and for an operator of another site a 404
    assert console_client(sign_in=False).get(path).status_code == 401
    assert console_client(local_access=SiteAccess.parse("demo-hq")).get(path).status_code == 404
    assert client.get(f"/alerts/{alert.alert_id}/media/manifest").status_code == 404


def test_a_zone_alert_raised_while_disarmed_shows_its_zone_and_that_it_was_not_notified(world: World, client) -> None:
    # GIVEN a version 2 alert in zone "dock door", raised outside the arming schedule, in the history
    from alert_lambda.history import history_item
    from contracts.alert import make_alert_id

    base = world.by_camera("lobby-1")[0]
    alert = base.model_copy(update={
        "schema_version": "2", "event_type": "intrusion", "zone": "dock door", "armed": False, "notify": False,
        "alert_id": make_alert_id(base.camera_id, "intrusion", base.started_at, "dock door"),
    })
    world.dynamodb.put_item(TableName=world.stack.names.alert_history_table, Item=_serialize(history_item(alert)))
    # WHEN the operator opens the list and the alert's page
    listing = client.get("/alerts?camera=lobby-1").text
    page = client.get(f"/alerts/{alert.alert_id}").text
    # THEN both name the zone and say it was not notified
    assert alert.alert_id in listed(listing)
    assert '<span class="muted zone">in dock door</span>' in listing
    assert "disarmed, not notified" in listing
    assert 'in <span id="zone">dock door</span> on lobby-1' in page
    assert 'id="not-notified"' in page
