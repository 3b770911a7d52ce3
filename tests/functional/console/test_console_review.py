"""Reviews: the buttons write the training label and an audit entry; CSRF and conflicts are refused."""

from __future__ import annotations

import json
import re

import pytest
from console_world import AUDIT_TABLE, World

from archive.keys import feedback_key
from console.store import AlertStore, ReviewConflict

TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


SEEN = re.compile(r'name="seen" value="([^"]+)"')


def csrf_token(client, alert_id: str) -> str:
    return TOKEN.search(client.get(f"/alerts/{alert_id}").text).group(1)


def review_form(client, alert_id: str) -> dict[str, str]:
    """The hidden fields of the alert page's review form: its CSRF token and the review state it shows."""
    html = client.get(f"/alerts/{alert_id}").text
    return {"csrf_token": TOKEN.search(html).group(1), "seen": SEEN.search(html).group(1)}


def label_object(world: World, alert) -> dict:
    body = world.s3.get_object(Bucket=world.stack.names.bucket, Key=feedback_key(alert.camera_id, alert.alert_id))
    return json.loads(body["Body"].read())


def manifest_keys(world: World) -> list[str]:
    listing = world.s3.list_objects_v2(Bucket=world.stack.names.bucket, Prefix="manifests/")
    return [obj["Key"] for obj in listing.get("Contents", [])]


def read_lines(world: World, key: str) -> list[str]:
    body = world.s3.get_object(Bucket=world.stack.names.bucket, Key=key)["Body"].read().decode()
    return [raw for raw in body.splitlines() if raw.strip()]


def audit_items(world: World, alert_id: str) -> list[dict]:
    items = world.dynamodb.query(TableName=AUDIT_TABLE, KeyConditionExpression="alert_id = :a",
                                 ExpressionAttributeValues={":a": {"S": alert_id}})["Items"]
    return [{k: v["S"] for k, v in item.items() if k not in ("at",)} for item in items]


def test_false_alarm_writes_the_feedback_label_the_review_and_its_audit(world: World, client) -> None:
    # GIVEN an archived alert the operator is looking at
    alert = world.by_camera("lobby-1")[2]
    form = review_form(client, alert.alert_id)
    # WHEN they press "false alarm"
    response = client.post(f"/alerts/{alert.alert_id}/review", data={"label": "false_alarm", **form},
                           headers={"Origin": "http://127.0.0.1:8080"})
    # THEN they are sent back to the alert, which says the review is saved
    assert response.status_code == 303
    assert response.headers["location"] == f"/alerts/{alert.alert_id}?reviewed=false_alarm"
    assert "Review saved: false alarm" in client.get(response.headers["location"]).text
    # AND the training label is the object `python -m archive.feedback` writes
    label = label_object(world, alert)
    assert {k: v for k, v in label.items() if k != "labelled_at"} == {
        "schema_version": "1", "alert_id": alert.alert_id, "camera_id": "lobby-1", "label": "false_alarm",
        "operator": "local-operator", "note": None,
    }
    # AND the alert clip's manifest line carries false_alarm events for the next training run
    lines = [json.loads(raw) for key in manifest_keys(world) for raw in read_lines(world, key)]
    labelled = [line for line in lines if line.get("alert_id") == alert.alert_id]
    assert len(labelled) == 1 and labelled[0]["events"][0]["label"] == "false_alarm"
    assert all(not line.get("events") for line in lines if line.get("alert_id") != alert.alert_id)
    # AND the list shows the review with who and when
    listing = client.get("/alerts?review=false_alarm").text
    assert re.findall(r'data-alert-id="([0-9a-f-]+)"', listing) == [alert.alert_id]
    assert "false alarm</span>\n      <span class=\"muted\">by local-operator at " in listing
    # AND the review is audited, before -> after
    assert audit_items(world, alert.alert_id) == [{
        "alert_id": alert.alert_id, "operator": "local-operator", "before": "unreviewed", "after": "false_alarm",
        "camera_id": "lobby-1", "site": "demo-hq",
    }]


def test_changing_a_verdict_is_audited_twice_and_relabels(world: World, client) -> None:
    alert = world.by_camera("dock-2")[0]
    for label in ("false_alarm", "true_incident"):
        form = review_form(client, alert.alert_id)
        assert client.post(f"/alerts/{alert.alert_id}/review", data={"label": label, **form}).status_code == 303
    assert label_object(world, alert)["label"] == "true_incident"
    changes = sorted((i["before"], i["after"]) for i in audit_items(world, alert.alert_id))
    assert changes == [("false_alarm", "true_incident"), ("unreviewed", "false_alarm")]
    html = client.get(f"/alerts/{alert.alert_id}").text
    assert "unreviewed → false alarm" in html and "false alarm → true incident" in html


@pytest.mark.parametrize(
    ("headers", "with_token", "reason"),
    [
        ({"Origin": "https://evil.example"}, True, "request from another origin (https://evil.example) refused"),
        ({"Sec-Fetch-Site": "cross-site"}, True, "cross-site request refused"),
        ({}, False, "the form has no CSRF token"),
    ],
)
def test_cross_site_or_tokenless_post_is_a_403_and_changes_nothing(world, client, headers, with_token, reason) -> None:
    alert = world.alerts[0]
    token = csrf_token(client, alert.alert_id)
    data = {"label": "false_alarm", **({"csrf_token": token} if with_token else {})}
    response = client.post(f"/alerts/{alert.alert_id}/review", data=data, headers=headers)
    assert response.status_code == 403
    assert reason in response.text
    assert audit_items(world, alert.alert_id) == []
    with pytest.raises(world.s3.exceptions.NoSuchKey):
        label_object(world, alert)


def test_csrf_token_of_another_session_is_refused(world, console_client) -> None:
    alert = world.alerts[0]
    with console_client() as first, console_client() as second:
        stolen = csrf_token(first, alert.alert_id)
        csrf_token(second, alert.alert_id)  # second has its own nonce cookie
        response = second.post(f"/alerts/{alert.alert_id}/review", data={"label": "true_incident", "csrf_token": stolen})
    assert response.status_code == 403
    assert "CSRF token is not valid" in response.text


def test_bad_label_is_a_400(world, client) -> None:
    alert = world.alerts[0]
    response = client.post(f"/alerts/{alert.alert_id}/review",
                           data={"label": "maybe", "csrf_token": csrf_token(client, alert.alert_id)})
    assert response.status_code == 400


def test_two_operators_reviewing_the_same_view_conflict(world: World) -> None:
    # GIVEN two operators who loaded the same unreviewed alert
    from console.access import SiteAccess

    store = AlertStore(world.dynamodb, "vigil-alert-history", AUDIT_TABLE)
    seen = store.get(world.alerts[0].alert_id, SiteAccess.everything())
    store.review(seen, "true_incident", "alice")
    # WHEN the second submits against the stale view THEN it is refused, not silently overwritten
    with pytest.raises(ReviewConflict):
        store.review(seen, "false_alarm", "bob")
    assert store.get(world.alerts[0].alert_id, SiteAccess.everything()).review.by == "alice"


def test_history_is_idempotent_and_keeps_the_review(world: World) -> None:
    from alert_lambda.history import record_alert
    from console.access import SiteAccess

    store = AlertStore(world.dynamodb, "vigil-alert-history", AUDIT_TABLE)
    alert = world.alerts[0]
    store.review(store.get(alert.alert_id, SiteAccess.everything()), "false_alarm", "alice")
    # WHEN the Lambda records the same alert again (a retried batch)
    record_alert(alert, "vigil-alert-history")
    # THEN there is still one item, with its review
    items = world.dynamodb.query(TableName="vigil-alert-history", KeyConditionExpression="camera_id = :c",
                                 ExpressionAttributeValues={":c": {"S": alert.camera_id}})["Items"]
    assert [i["alert_id"]["S"] for i in items].count(alert.alert_id) == 1
    assert store.get(alert.alert_id, SiteAccess.everything()).review.label == "false_alarm"


def test_a_stale_form_is_a_409_that_says_what_changed_and_keeps_the_label(world: World, client) -> None:
    # GIVEN one form loaded while the alert was unreviewed (S2: it used to be accepted again and again)
    alert = world.by_camera("lobby-1")[1]
    stale = review_form(client, alert.alert_id)
    assert stale["seen"] == "0:unreviewed"
    # AND the alert was then reviewed as a false alarm from it
    first = client.post(f"/alerts/{alert.alert_id}/review", data={"label": "false_alarm", **stale})
    assert first.status_code == 303
    # WHEN the same stale form is submitted again, with the other verdict
    again = client.post(f"/alerts/{alert.alert_id}/review", data={"label": "true_incident", **stale})
    # THEN it is a 409 that says what the operator saw and what the alert is now, with the security headers
    assert again.status_code == 409
    assert 'you saw "not reviewed", it is now "false alarm by local-operator at ' in again.text.replace("&#34;", '"')
    assert f'<a id="reopen" href="/alerts/{alert.alert_id}">' in again.text
    assert again.headers["x-frame-options"] == "DENY"
    # AND the review, its audit and the training label in S3 are the first verdict's
    assert [(i["before"], i["after"]) for i in audit_items(world, alert.alert_id)] == [("unreviewed", "false_alarm")]
    assert label_object(world, alert)["label"] == "false_alarm"
    # AND a form loaded now carries the new state and is accepted
    fresh = review_form(client, alert.alert_id)
    assert fresh["seen"] == "1:false_alarm"
    assert client.post(f"/alerts/{alert.alert_id}/review", data={"label": "true_incident", **fresh}).status_code == 303
    assert label_object(world, alert)["label"] == "true_incident"


def test_a_form_without_its_review_state_is_a_400(world: World, client) -> None:
    alert = world.alerts[0]
    response = client.post(f"/alerts/{alert.alert_id}/review",
                           data={"label": "false_alarm", "csrf_token": csrf_token(client, alert.alert_id)})
    assert response.status_code == 400
    assert "reload the page" in response.text
    assert audit_items(world, alert.alert_id) == []


def test_same_label_twice_from_two_views_is_a_conflict_too(world: World) -> None:
    # GIVEN two operators who loaded the alert reviewed once; the first re-confirms it
    from console.access import SiteAccess

    store = AlertStore(world.dynamodb, "vigil-alert-history", AUDIT_TABLE)
    store.review(store.get(world.alerts[1].alert_id, SiteAccess.everything()), "false_alarm", "alice")
    seen = store.get(world.alerts[1].alert_id, SiteAccess.everything())
    store.review(seen, "false_alarm", "carol")
    # WHEN the second submits against version 1 THEN it is refused although the label is the same
    with pytest.raises(ReviewConflict):
        store.review(seen, "true_incident", "bob")
    assert store.get(world.alerts[1].alert_id, SiteAccess.everything()).review.by == "carol"


def test_saved_notice_only_for_the_operators_own_review(world: World, client) -> None:
    # GIVEN an alert never reviewed (S4: `?reviewed=` alone showed "Review saved")
    alert = world.alerts[0]
    assert "Review saved" not in client.get(f"/alerts/{alert.alert_id}?reviewed=true_incident").text


@pytest.mark.parametrize(("client_host", "trusted", "status"), [
    ("203.0.113.9", (), 403),            # a client's own X-Forwarded-Host is not believed
    ("10.0.4.7", ("10.0.0.0/16",), 303),  # the ALB's (a trusted proxy) is
])
def test_x_forwarded_host_counts_only_from_a_trusted_proxy(world: World, console_client, client_host, trusted,
                                                           status) -> None:
    from console_world import make_settings
    from starlette.testclient import TestClient

    from console.app import create_app

    # GIVEN (S5) a POST whose Origin matches only the X-Forwarded-Host it sends
    settings = make_settings(trusted_proxies=trusted)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8080", follow_redirects=False,
                    client=(client_host, 50000)) as client:
        assert client.get(f"/alerts?token={settings.token}").status_code == 303
        alert = world.alerts[0]
        form = review_form(client, alert.alert_id)
        response = client.post(f"/alerts/{alert.alert_id}/review", data={"label": "false_alarm", **form},
                               headers={"Origin": "https://evil.example", "X-Forwarded-Host": "evil.example",
                                        "X-Forwarded-Proto": "https"})
    # THEN the origin check uses it only when the proxy is trusted
    assert response.status_code == status


def test_bulk_review_saves_the_ticked_alerts_and_leaves_those_changed_since(world: World, client) -> None:
    picks_re = re.compile(r'name="pick" value="([^"]+)"')
    # GIVEN the list loaded with three alerts ticked, one of which another operator reviews meanwhile
    html = client.get("/alerts?site=demo-hq").text
    token = TOKEN.search(html).group(1)
    picks = picks_re.findall(html)[:3]
    ticked = [p.split("|")[0] for p in picks]
    changed = next(a for a in world.alerts if a.alert_id == ticked[1])
    client.post(f"/alerts/{changed.alert_id}/review", data={"label": "true_incident", **review_form(client, changed.alert_id)})
    # WHEN the operator marks the ticked ones as false alarms
    response = client.post("/alerts/bulk-review", data={"csrf_token": token, "label": "false_alarm", "pick": picks,
                                                        "back": "/alerts?site=demo-hq"})
    # THEN two are saved, the changed one is left alone and counted, and the list says so
    assert response.status_code == 303
    assert response.headers["location"] == "/alerts?site=demo-hq&bulk=false_alarm%3A2%3A1%3A0"
    notice = client.get(response.headers["location"]).text
    assert "Saved 2 as false alarm." in notice and "1 had been reviewed by someone else" in notice
    by_id = {a.alert_id: a for a in world.alerts}
    assert [label_object(world, by_id[a])["label"] for a in ticked] == ["false_alarm", "true_incident", "false_alarm"]
    assert [(i["before"], i["after"]) for i in audit_items(world, ticked[1])] == [("unreviewed", "true_incident")]


def test_bulk_review_needs_the_csrf_token(world: World, client) -> None:
    html = client.get("/alerts").text
    pick = re.search(r'name="pick" value="([^"]+)"', html).group(1)
    response = client.post("/alerts/bulk-review", data={"label": "false_alarm", "pick": [pick]})
    assert response.status_code == 403
    assert audit_items(world, pick.split("|")[0]) == []
