"""Access: sign-in (start-up token locally, verified ALB OIDC headers on AWS) and site isolation."""

from __future__ import annotations

import re
import time

import pytest
from console_world import ALB_ARN, AlbSigner, World
from cryptography.hazmat.primitives.asymmetric import ec

ROW = re.compile(r'class="alert-row" data-alert-id="([0-9a-f-]+)"')
CAMERA_ROW = re.compile(r'class="camera-row" data-camera-id="([^"]+)"')


@pytest.mark.parametrize("path", ["/alerts", "/cameras", "/alerts/anything"])
def test_every_page_needs_a_signed_in_operator(console_client, path) -> None:
    response = console_client(sign_in=False).get(path)
    assert response.status_code == 401
    assert "open the console URL printed at start-up" in response.text


def test_wrong_token_and_forged_cookie_are_401(console_client) -> None:
    client = console_client(sign_in=False)
    assert client.get("/alerts?token=" + "x" * 32).status_code == 401
    client.cookies.set("vigil_session", "eyJzdWIiOiAibWFsbG9yeSIsICJpYXQiOiA5OTk5OTk5OTk5fQ.00ff")
    response = client.get("/alerts")
    assert response.status_code == 401
    assert "forged" in response.text


def test_token_sign_in_sets_a_strict_http_only_cookie_and_drops_the_token_from_the_url(console_client) -> None:
    client = console_client(sign_in=False)
    response = client.get("/alerts?camera=lobby-1&token=" + "t" * 32)
    assert response.status_code == 303
    assert response.headers["location"] == "/alerts?camera=lobby-1"
    cookie = response.headers["set-cookie"]
    assert "vigil_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/alerts").status_code == 200


def test_operator_limited_to_one_site_never_sees_another(world: World, console_client) -> None:
    from console.access import SiteAccess

    client = console_client(local_access=SiteAccess.parse("demo-hq"))
    port_alert = world.by_camera("dock-2")[0]
    assert ROW.findall(client.get("/alerts").text) == world.newest_first(site="demo-hq")
    assert ROW.findall(client.get("/alerts?site=demo-port").text) == []
    assert ROW.findall(client.get("/alerts?camera=dock-2").text) == []
    assert client.get(f"/alerts/{port_alert.alert_id}").status_code == 404
    assert CAMERA_ROW.findall(client.get("/cameras").text) == ["lobby-1"]
    html = client.get(f"/alerts/{world.alerts[-2].alert_id}").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)
    response = client.post(f"/alerts/{port_alert.alert_id}/review", data={"label": "false_alarm", "csrf_token": token})
    assert response.status_code == 404


def alb_client(console_client, signer: AlbSigner, **overrides):
    return console_client(sign_in=False, key_source=signer.key_source, auth_mode="alb", alb_arn=ALB_ARN, **overrides)


def test_alb_operator_sees_the_sites_of_their_claim(world: World, console_client, alb_signer: AlbSigner) -> None:
    client = alb_client(console_client, alb_signer)
    token = alb_signer.token({"sub": "u-1", "email": "ana@example.org", "custom:vigil_sites": "demo-port"})
    headers = {"x-amzn-oidc-data": token, "x-amzn-oidc-identity": "u-1"}
    response = client.get("/alerts", headers=headers)
    assert response.status_code == 200
    assert ROW.findall(response.text) == world.newest_first(site="demo-port")
    assert "ana@example.org · demo-port" in response.text
    assert client.get(f"/alerts/{world.by_camera('lobby-1')[0].alert_id}", headers=headers).status_code == 404


def test_alb_groups_map_to_sites(world: World, console_client, alb_signer: AlbSigner) -> None:
    client = alb_client(console_client, alb_signer, group_sites={"hq-guards": ["demo-hq"], "admins": ["*"]})
    guard = alb_signer.token({"sub": "u-2", "cognito:groups": ["hq-guards"]})
    admin = alb_signer.token({"sub": "u-3", "cognito:groups": ["admins"]})
    nobody = alb_signer.token({"sub": "u-4"})
    assert ROW.findall(client.get("/alerts", headers={"x-amzn-oidc-data": guard}).text) == world.newest_first(
        site="demo-hq")
    assert ROW.findall(client.get("/alerts", headers={"x-amzn-oidc-data": admin}).text) == world.newest_first()
    response = client.get("/alerts", headers={"x-amzn-oidc-data": nobody})
    assert response.status_code == 403
    assert "not assigned to any site" in response.text


@pytest.mark.parametrize(
    ("make_headers", "reason"),
    [
        (lambda s: {}, "the load balancer sent no OIDC token"),
        (lambda s: {"x-amzn-oidc-data": s.token({"sub": "u", "custom:vigil_sites": "*"},
                                                key=ec.generate_private_key(ec.SECP256R1()))},
         "signature is not valid"),
        (lambda s: {"x-amzn-oidc-data": s.token({"sub": "u", "custom:vigil_sites": "*"},
                                                signer=ALB_ARN.replace("vigil-console", "other"))},
         "not signed by this console&#39;s load balancer"),
        (lambda s: {"x-amzn-oidc-data": s.token({"sub": "u", "custom:vigil_sites": "*"}, exp=time.time() - 600)},
         "expired"),
        (lambda s: {"x-amzn-oidc-data": s.token({"sub": "u", "custom:vigil_sites": "*"}, kid="unknown-kid")},
         "signing key could not be obtained"),
        (lambda s: {"x-amzn-oidc-data": s.token({"sub": "u", "custom:vigil_sites": "*"}),
                    "x-amzn-oidc-identity": "someone-else"}, "does not match"),
        (lambda s: {"x-amzn-oidc-data": "not.a.jwt"}, "not readable"),
    ],
)
def test_alb_missing_forged_or_expired_token_is_401(console_client, alb_signer, make_headers, reason) -> None:
    client = alb_client(console_client, alb_signer)
    response = client.get("/alerts", headers=make_headers(alb_signer))
    assert response.status_code == 401
    assert reason in response.text


def test_alb_review_post_with_csrf_works(world: World, console_client, alb_signer: AlbSigner) -> None:
    # GIVEN the console behind the ALB's https listener (its cookies are Secure)
    client = alb_client(console_client, alb_signer, base_url="https://console.internal.example")
    headers = {"x-amzn-oidc-data": alb_signer.token({"sub": "u-9", "email": "bo@example.org",
                                                     "custom:vigil_sites": "demo-hq"}),
               "x-forwarded-proto": "https", "x-forwarded-host": "console.internal.example"}
    alert = world.by_camera("lobby-1")[0]
    html = client.get(f"/alerts/{alert.alert_id}", headers=headers).text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)
    seen = re.search(r'name="seen" value="([^"]+)"', html).group(1)
    response = client.post(f"/alerts/{alert.alert_id}/review",
                           data={"label": "true_incident", "csrf_token": token, "seen": seen},
                           headers={**headers, "Origin": "https://console.internal.example"})
    assert response.status_code == 303
    assert "by bo@example.org" in client.get("/alerts", headers=headers).text
