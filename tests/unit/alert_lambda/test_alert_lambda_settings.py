"""alert_lambda.settings: environment in, validated settings out."""

from __future__ import annotations

import pytest

from alert_lambda.settings import Settings, SettingsError


def test_defaults_from_an_empty_environment():
    assert Settings.from_env({}) == Settings(
        alert_topic_arn="",
        link_expiry_s=604800,
        idempotency_table="vigil-idempotency",
        idempotency_ttl_s=86400,
        service_name="vigil-alerts",
        endpoint_url=None,
        region=None,
        site_timezones={},
        dead_letter_queue_url="",
    )


def test_values_from_the_environment():
    env = {
        "VIGIL_ALERT_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:vigil-alerts",
        "VIGIL_LINK_EXPIRY_S": "3600",
        "VIGIL_IDEMPOTENCY_TABLE": "",
        "VIGIL_IDEMPOTENCY_TTL_S": "600",
        "POWERTOOLS_SERVICE_NAME": "alerts-eu",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "VIGIL_SITE_TIMEZONES": '{"hq": "Europe/Paris", "port-east": "America/New_York"}',
        "VIGIL_DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/vigil-alerts-dlq",
    }
    assert Settings.from_env(env) == Settings(
        alert_topic_arn="arn:aws:sns:eu-west-1:123456789012:vigil-alerts",
        link_expiry_s=3600,
        idempotency_table="",
        idempotency_ttl_s=600,
        service_name="alerts-eu",
        endpoint_url="http://127.0.0.1:5000",
        region="eu-west-1",
        site_timezones={"hq": "Europe/Paris", "port-east": "America/New_York"},
        dead_letter_queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/vigil-alerts-dlq",
    )


@pytest.mark.parametrize("expiry", ["0", "604801", "a week"])
def test_link_expiry_outside_what_sigv4_allows_is_refused(expiry):
    with pytest.raises(SettingsError, match="invalid alert_lambda environment"):
        Settings.from_env({"VIGIL_LINK_EXPIRY_S": expiry})


def test_missing_topic_is_a_clear_error():
    with pytest.raises(SettingsError, match="VIGIL_ALERT_TOPIC_ARN is not set"):
        Settings.from_env({}).require_topic()


def test_each_site_gets_its_zone_and_others_utc():
    settings = Settings.from_env({"VIGIL_SITE_TIMEZONES": '{"hq": "Europe/Paris"}'})

    assert (str(settings.zone_for("hq")), str(settings.zone_for("elsewhere"))) == ("Europe/Paris", "UTC")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"hq": "Mars/Olympus"}', "site 'hq': unknown time zone 'Mars/Olympus'"),
        ('{"hq": "../../etc/passwd"}', "site 'hq': unknown time zone '../../etc/passwd'"),
        ('["Europe/Paris"]', "VIGIL_SITE_TIMEZONES must be a JSON object of site -> time zone name"),
        ("{hq: Europe/Paris}", "VIGIL_SITE_TIMEZONES is not JSON"),
    ],
)
def test_bad_site_time_zones_are_one_clear_line(value, message):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"VIGIL_SITE_TIMEZONES": value})

    assert message in str(info.value) and "\n" not in str(info.value)
