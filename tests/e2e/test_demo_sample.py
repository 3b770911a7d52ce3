"""`make demo` on the bundled sample: alerts while people are in the room, none while it is empty."""

from __future__ import annotations

import json

import pytest

from local import demo
from local.ground_truth import EmptyStretches

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_sample_alerts_while_people_are_in_view_and_never_while_the_room_is_empty(tmp_path):
    # GIVEN the bundled sample and its measured empty-room stretches
    truth = EmptyStretches.for_video(str(demo.SAMPLE_VIDEO))
    assert truth is not None
    # WHEN the whole loop runs on it (as fast as possible: a test, not a live camera)
    code = demo.main(["--speed", "0", "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    times = [n["media_time_s"] for n in summary["notifications"]]
    # THEN every alert became exactly one notification, at least one while people are in view,
    # and none started while the room was empty
    assert code == 0, summary
    assert summary["notifications_delivered"] == summary["alerts_published"] >= 1
    assert [t for t in times if truth.is_empty_at(t)] == []
    assert any(truth.is_occupied_at(t) for t in times)
    assert len({n["alert_id"] for n in summary["notifications"]}) == len(times)
    # AND the demo's camera zone (the floor around the table) sorts them: intrusions in zone table,
    # scene anomalies elsewhere in the room
    by_zone = summary["notifications_by_zone"]
    assert set(by_zone) <= {"table", "(outside zones)"} and "table" in by_zone, by_zone
    assert set(by_zone["table"]) == {"intrusion"}
    assert sum(sum(events.values()) for events in by_zone.values()) == len(times)
    assert all((n["zone"] == "table") == (n["event_type"] == "intrusion") for n in summary["notifications"])
    # AND the console will find every one of them after the run: history row, snapshot, clip and score trace, saved
    n, first = summary["notifications_delivered"], min(summary["notifications"], key=lambda x: x["media_time_s"])
    assert summary["console"] == {"state": str(tmp_path / "state"), "first_alert_id": first["alert_id"],
                                  "alerts": n, "in_history": n, "snapshots": n, "clips": n, "score_traces": n}
