"""`python -m worker.scene_cli` (in-process, against a moto server): validate offline with field-named
errors, set conditionally on the revision, show what is stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.stack import LocalStack
from worker.scene_cli import EXIT_CONFLICT, EXIT_OK, EXIT_USAGE, main

FENCE = {"zones": [{"name": "fence", "polygon": [[0.1, 0.5], [0.9, 0.5], [0.9, 1.0], [0.1, 1.0]]}]}
SCHEDULE = {
    "schedule": {
        "timezone": "Europe/London",
        "windows": [{"days": ["mon", "tue"], "start": "22:00", "end": "06:00"}],
    }
}


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_validate_names_the_field_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a scene with a 2-point polygon and a window ending at 24:00 WHEN validated (no AWS at all)
    bad = write(
        tmp_path,
        "bad.json",
        {
            "zones": [{"name": "fence", "polygon": [[0, 0], [1, 1]]}],
            "schedule": {"timezone": "UTC", "windows": [{"days": ["mon"], "start": "22:00", "end": "24:00"}]},
        },
    )
    # THEN exit 2 and one line per bad field
    assert main(["validate", "--file", str(bad)]) == EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == [
        f"invalid scene {bad} (2 error(s)):",
        "  zones.0.polygon: a polygon needs at least 3 points, got 2",
        "  schedule.windows.0.end: time '24:00' is not HH:MM",
    ]
    # AND a good one prints back, exit 0
    assert main(["validate", "--file", str(write(tmp_path, "ok.json", FENCE))]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == FENCE


def test_set_then_show_then_a_stale_set_is_a_conflict(
    local_stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fence, night = write(tmp_path, "fence.json", FENCE), write(tmp_path, "night.json", {**FENCE, **SCHEDULE})
    # GIVEN no scene yet WHEN set THEN revision 1
    assert main(["set", "--camera", "gate-north", "--file", str(fence), "--by", "alice"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {
        "camera_id": "gate-north",
        "revision": 1,
        "updated_by": "alice",
    }
    # WHEN set again from revision 1 THEN revision 2, and show prints it
    assert (
        main(["set", "--camera", "gate-north", "--file", str(night), "--revision", "1", "--by", "bob"])
        == EXIT_OK
    )
    capsys.readouterr()
    assert main(["show", "--camera", "gate-north"]) == EXIT_OK
    shown = json.loads(capsys.readouterr().out)
    assert (shown["revision"], shown["updated_by"], shown["scene"]) == (2, "bob", {**FENCE, **SCHEDULE})
    # WHEN someone sets from revision 1 (stale) THEN exit 3 and nothing written
    assert main(["set", "--camera", "gate-north", "--file", str(fence), "--revision", "1"]) == EXIT_CONFLICT
    assert "changed since revision 1 was read" in capsys.readouterr().err
    main(["show", "--camera", "gate-north"])
    assert json.loads(capsys.readouterr().out)["revision"] == 2
