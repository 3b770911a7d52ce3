"""Pure parts of the console: site access, ALB token checks, session cookies, filters, chart, items."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pydantic import ValidationError

from alert_lambda.history import history_item
from console.access import SiteAccess, access_from_claims
from console.auth import Unauthorized, read_session_cookie, session_cookie, verify_alb_token
from console.cameras import CameraStatus
from console.charts import ScoreChart, ScorePoint, TraceChart, fitted_window, split_at_gaps, tick_step
from console.settings import ConsoleSettings, SettingsError
from console.store import AlertFilter, _months_desc
from contracts.alert import AlertRecord, S3Object, Severity
from contracts.inference import Region

ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/console/1"


def test_site_access_parses_star_lists_and_nothing() -> None:
    assert SiteAccess.parse("*") == SiteAccess(all_sites=True)
    assert SiteAccess.parse(" hq , port-2,") == SiteAccess(sites=frozenset({"hq", "port-2"}))
    assert SiteAccess.parse("").empty and SiteAccess.parse(None).empty
    assert not SiteAccess.parse("hq").allows("port-2") and SiteAccess.parse("hq").allows("hq")


def test_access_from_claims_unions_the_claim_and_the_groups() -> None:
    claims = {"custom:vigil_sites": "hq", "cognito:groups": ["port-guards", "unknown"]}
    access = access_from_claims(claims, "custom:vigil_sites", {"port-guards": ["port-2"]})
    assert access == SiteAccess(sites=frozenset({"hq", "port-2"}))
    assert access_from_claims({"cognito:groups": "admins"}, "x", {"admins": ["*"]}) == SiteAccess.everything()


def _b64(data: bytes, pad: bool) -> str:
    text = base64.urlsafe_b64encode(data).decode()
    return text if pad else text.rstrip("=")


def _token(key: ec.EllipticCurvePrivateKey, claims: dict, *, pad: bool = True, alg: str = "ES256") -> str:
    header = {"alg": alg, "kid": "k-1", "signer": ARN, "exp": int(time.time()) + 60}
    signing = f"{_b64(json.dumps(header).encode(), pad)}.{_b64(json.dumps(claims).encode(), pad)}"
    r, s = decode_dss_signature(key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'), pad)}"


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize("pad", [True, False])
def test_alb_token_verifies_with_or_without_base64_padding(key, pad: bool) -> None:
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = verify_alb_token(_token(key, {"sub": "u-1", "email": "a@b"}, pad=pad), expected_signer=ARN,
                              key_source=lambda kid: pem)
    assert claims == {"sub": "u-1", "email": "a@b"}


def test_alb_token_with_another_algorithm_or_tampered_claims_is_refused(key) -> None:
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(Unauthorized, match="not ES256"):
        verify_alb_token(_token(key, {"sub": "u"}, alg="none"), expected_signer=ARN, key_source=lambda kid: pem)
    header, _, signature = _token(key, {"sub": "u"}).split(".")
    forged = f"{header}.{_b64(json.dumps({'sub': 'admin'}).encode(), True)}.{signature}"
    with pytest.raises(Unauthorized, match="signature is not valid"):
        verify_alb_token(forged, expected_signer=ARN, key_source=lambda kid: pem)


def test_session_cookie_round_trip_forgery_and_expiry() -> None:
    cookie = session_cookie("k" * 32, "ana", now=1000.0)
    assert read_session_cookie("k" * 32, cookie, now=1001.0) == "ana"
    with pytest.raises(Unauthorized, match="forged"):
        read_session_cookie("other-secret-xxxxxxxx", cookie, now=1001.0)
    with pytest.raises(Unauthorized, match="expired"):
        read_session_cookie("k" * 32, cookie, now=1000.0 + 13 * 3600)


def test_alert_filter_from_query_keeps_known_non_empty_fields_and_refuses_bad_ones() -> None:
    flt = AlertFilter.from_query({"site": "hq", "camera": "", "date_from": "2026-11-01", "page": "3"})
    assert flt == AlertFilter(site="hq", date_from=date(2026, 11, 1))
    with pytest.raises(ValidationError):
        AlertFilter.from_query({"review": "maybe"})


def test_months_desc_crosses_the_year() -> None:
    assert list(_months_desc(date(2026, 2, 10), date(2025, 11, 30))) == ["2026-02", "2026-01", "2025-12", "2025-11"]


def test_chart_places_points_and_threshold_in_the_plot() -> None:
    chart = ScoreChart([ScorePoint(-30.0, 0.4), ScorePoint(0.0, 1.0, True)], threshold=0.5, window_s=60.0)
    svg = chart.svg()
    assert svg.count("<circle") == 2 and 'class="point current"' in svg and "threshold 0.500" in svg
    assert chart.x(0.0) == pytest.approx((48 + 640 - 16) / 2)
    assert chart.y(1.0) < chart.y(0.5) < chart.y(0.0)
    assert fitted_window([-10.0, 40.0], most_s=1800) == 60.0
    assert fitted_window([-1000.0], most_s=1800) == 1250.0


def test_history_item_has_the_keys_the_console_queries_on() -> None:
    started = datetime(2026, 11, 25, 14, 45, 7, 123000, tzinfo=UTC)
    alert = AlertRecord(alert_id="a-1", camera_id="lobby-1", site="hq", event_type="scene_anomaly",
                        severity=Severity.HIGH, score=0.91, threshold=0.5, started_at=started, frame_at=started,
                        detected_at=started, regions=[Region(x=0.1, y=0.2, w=0.3, h=0.4, score=0.9)],
                        snapshot=S3Object(bucket="bkt", key="k.jpg"), model_version="m-1")
    item = history_item(alert, recorded_at=started)
    assert item == {
        "camera_id": "lobby-1", "sk": "2026-11-25T14:45:07.123Z#a-1", "alert_id": "a-1", "site": "hq",
        "month": "2026-11", "event_type": "scene_anomaly", "severity": "high", "score": Decimal("0.91"),
        "threshold": Decimal("0.5"), "model_version": "m-1", "started_at": "2026-11-25T14:45:07.123Z",
        "recorded_at": "2026-11-25T14:45:07.123Z", "alert": alert.model_dump_json(),
    }
    nan_item = history_item(alert.model_copy(update={"score": float("nan")}), recorded_at=started)
    assert "score" not in nan_item


def test_camera_status_item_shape() -> None:
    at = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    status = CameraStatus(camera_id="c1", site="hq", state="reconnecting", last_frame_at=at, lag_ms=850.5,
                          model_version="m-2", threshold=0.61, worker_id="task-9", updated_at=at)
    assert status.to_item() == {
        "id": "camera-status#c1", "schema_version": "1", "camera_id": "c1", "site": "hq", "state": "reconnecting",
        "last_frame_at": "2026-11-25T08:00:00.000Z", "lag_ms": Decimal("850.5"), "model_version": "m-2",
        "threshold": Decimal("0.61"), "worker_id": "task-9", "updated_at": "2026-11-25T08:00:00.000Z",
    }


def test_settings_from_env_and_their_errors() -> None:
    settings = ConsoleSettings.from_env({"VIGIL_CONSOLE_LOCAL_SITES": "hq", "VIGIL_CONSOLE_GROUP_SITES":
                                         '{"g": ["port"]}', "AWS_REGION": "eu-west-1"})
    assert (settings.local_access, settings.group_sites, settings.region) == (
        SiteAccess(sites=frozenset({"hq"})), {"g": ["port"]}, "eu-west-1")
    with pytest.raises(SettingsError, match="VIGIL_CONSOLE_ALB_ARN"):
        ConsoleSettings.from_env({"VIGIL_CONSOLE_AUTH": "alb"})
    with pytest.raises(SettingsError, match="auth_mode"):
        ConsoleSettings.from_env({"VIGIL_CONSOLE_AUTH": "basic"})


def test_trace_chart_spans_the_clip_breaks_at_gaps_and_marks_the_start() -> None:
    # GIVEN a trace 5 s before to 10 s after the start, frames every 0.2 s but a gap from 0.2 s to 3 s
    points = [(-5.0, 0.1), (-4.8, 0.2), (-4.6, 0.3), (0.0, 0.9), (0.2, 0.8), (3.0, 0.2), (3.2, 0.1)]
    chart = TraceChart.of(points, threshold=0.5, pre_roll_s=5.0, post_roll_s=10.0)
    # THEN the x axis is -5..+10 s, ticked every 5 s (0 is the start), and the line breaks at the gaps
    assert (chart.start_s, chart.end_s) == (-5.0, 10.0) and tick_step(15.0) == 5.0
    assert chart.x(-5.0) == 46 and chart.x(10.0) == 480 - 22
    assert split_at_gaps(points) == [points[:3], points[3:5], points[5:]]
    svg = chart.svg()
    assert [">-5<", ">0<", ">+5<", ">+10<"] == [t for t in (">-5<", ">0<", ">+5<", ">+10<") if t in svg]
    assert svg.count("<polyline") == 3 and svg.count('class="point over"') == 2


def test_supervisor_groups_come_from_the_environment_and_make_the_role() -> None:
    from console.access import role_from_claims
    from console.settings import ConsoleSettings

    settings = ConsoleSettings.from_env({"VIGIL_CONSOLE_SUPERVISOR_GROUPS": "soc-leads, night-chiefs"})
    assert settings.supervisor_groups == ("soc-leads", "night-chiefs")
    assert role_from_claims({"cognito:groups": ["guards", "night-chiefs"]}, settings.supervisor_groups) == "supervisor"
    assert role_from_claims({"cognito:groups": ["guards"]}, settings.supervisor_groups) == "operator"
    assert role_from_claims({}, settings.supervisor_groups) == "operator"
