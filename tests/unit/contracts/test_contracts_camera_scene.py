"""ArmingSchedule on a fixed clock: weekly windows in the site's time zone, across midnight, across
a daylight-saving change, and date exceptions (issue 17)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from contracts.camera_scene import ArmingSchedule, CameraScene

BERLIN = ZoneInfo("Europe/Berlin")
NIGHTS = ArmingSchedule(  # armed every night 22:00 -> 06:00, Berlin
    timezone="Europe/Berlin",
    windows=[{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "22:00", "end": "06:00"}],
)


@pytest.mark.parametrize(
    ("local", "armed"),
    [
        (datetime(2026, 11, 25, 21, 59), False),
        (datetime(2026, 11, 25, 22, 0), True),
        (datetime(2026, 11, 25, 23, 59), True),
        (datetime(2026, 11, 26, 0, 0), True),  # past midnight: yesterday's window
        (datetime(2026, 11, 26, 5, 59), True),
        (datetime(2026, 11, 26, 6, 0), False),
        (datetime(2026, 11, 26, 12, 0), False),
    ],
)
def test_a_window_across_midnight(local: datetime, armed: bool):
    assert NIGHTS.armed_at(local.replace(tzinfo=BERLIN).astimezone(UTC)) is armed


def test_a_window_across_midnight_only_runs_on_from_its_own_days():
    # GIVEN armed Friday night only (22:00 Fri -> 06:00 Sat)
    friday = ArmingSchedule(timezone="Europe/Berlin", windows=[{"days": ["fri"], "start": "22:00", "end": "06:00"}])
    saturday_3am = datetime(2026, 11, 28, 3, 0, tzinfo=BERLIN)
    sunday_3am = datetime(2026, 11, 29, 3, 0, tzinfo=BERLIN)
    assert (friday.armed_at(saturday_3am), friday.armed_at(sunday_3am)) == (True, False)


def test_the_wall_clock_is_the_sites_across_a_daylight_saving_change():
    # GIVEN armed 08:00-18:00 every day in Berlin; the clocks went back on 2026-10-25 (CEST -> CET)
    days = ArmingSchedule(
        timezone="Europe/Berlin",
        windows=[{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "08:00", "end": "18:00"}],
    )
    # WHEN the same UTC hour is read before and after the change
    # THEN 06:30 UTC is 08:30 CEST (armed) the day before, and 07:30 CET (disarmed) the day after
    assert days.armed_at(datetime(2026, 10, 24, 6, 30, tzinfo=UTC)) is True
    assert days.armed_at(datetime(2026, 10, 26, 6, 30, tzinfo=UTC)) is False
    # and 07:30 UTC is armed on both days (09:30 CEST, 08:30 CET)
    assert days.armed_at(datetime(2026, 10, 24, 7, 30, tzinfo=UTC)) is True
    assert days.armed_at(datetime(2026, 10, 26, 7, 30, tzinfo=UTC)) is True
    # and across the spring change (2026-03-29, 02:00 -> 03:00) a night window holds the whole short night
    assert NIGHTS.armed_at(datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) is True  # 01:59 CET
    assert NIGHTS.armed_at(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) is True  # 03:00 CEST
    assert NIGHTS.armed_at(datetime(2026, 3, 29, 4, 0, tzinfo=UTC)) is False  # 06:00 CEST


def test_exceptions_win_over_the_windows_for_the_whole_local_date():
    holiday = ArmingSchedule.model_validate(
        {
            **NIGHTS.model_dump(),
            "exceptions": [{"date": "2026-12-24", "armed": True}, {"date": "2026-12-31", "armed": False}],
        }
    )
    assert holiday.armed_at(datetime(2026, 12, 24, 12, 0, tzinfo=BERLIN)) is True
    assert holiday.armed_at(datetime(2026, 12, 31, 23, 0, tzinfo=BERLIN)) is False
    assert holiday.armed_at(datetime(2027, 1, 1, 1, 0, tzinfo=BERLIN)) is True  # the next date: windows again


def test_no_schedule_is_always_armed_and_an_unknown_zone_is_refused():
    assert CameraScene().armed_at(datetime(2026, 1, 1, tzinfo=UTC)) is True
    with pytest.raises(ValidationError, match="unknown time zone"):
        ArmingSchedule(timezone="Mars/Olympus")
