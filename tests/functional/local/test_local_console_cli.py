"""`python -m local.console` (`make console`) on bad input: one clear line and a non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import sys

from local.console import main


def test_help_runs_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "local.console", "--help"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and "--demo" in result.stdout


def test_from_demo_without_a_saved_run_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    # GIVEN a folder where no `make demo` run saved its state
    # WHEN the console is asked to show that run THEN it says so in one line, before taking the port
    assert main(["--from-demo", str(tmp_path), "--port", "0"]) == 2
    assert capsys.readouterr().err == f"console: no saved state in {tmp_path} (state.json not found)\n"


def test_seeded_cameras_keep_their_heartbeat(local_stack) -> None:
    import threading
    from datetime import UTC, datetime, timedelta

    from console.access import SiteAccess
    from console.cameras import CameraStatus, read_statuses
    from local.console_seed import DEFAULT_CAMERAS, _serialize, keep_alive

    # GIVEN the seeded statuses, last written two minutes ago ("no heartbeat" on the Cameras page)
    dynamodb, table = local_stack.client("dynamodb"), local_stack.names.state_table
    old = datetime.now(UTC) - timedelta(minutes=2)
    for camera in DEFAULT_CAMERAS:
        status = CameraStatus(camera_id=camera.camera_id, site=camera.site, state="analysing", worker_id="seed",
                              updated_at=old)
        dynamodb.put_item(TableName=table, Item=_serialize(status.to_item()))
    # WHEN the keep-alive beside `make console` runs one period
    stop = threading.Event()
    beat = threading.Thread(target=keep_alive, args=(dynamodb, table, stop, 0.2), daemon=True)
    beat.start()
    time_limit = datetime.now(UTC) + timedelta(seconds=5)
    while datetime.now(UTC) < time_limit:
        statuses, _ = read_statuses(dynamodb, table, SiteAccess.everything())
        if all(s.updated_at > old + timedelta(minutes=1) for s in statuses):
            break
    stop.set()
    beat.join(timeout=5)
    # THEN every seeded camera's status is fresh, its state kept
    statuses, _ = read_statuses(dynamodb, table, SiteAccess.everything())
    assert sorted((s.camera_id, s.state) for s in statuses) == [("dock-2", "analysing"), ("lobby-1", "analysing")]
    assert all(datetime.now(UTC) - s.updated_at < timedelta(seconds=10) for s in statuses)
