"""An operator's review in `make console FROM_DEMO=<out>` (`python -m local.console --from-demo`), as a
process: start it, sign in with the token the demo saved, review one alert, stop it with SIGTERM
(as Ctrl+C), which saves the console's world back to the run's state folder."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from local.stack import free_port

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
SEEN = re.compile(r'name="seen" value="([^"]+)"')


def review_in_console_from_demo(out: Path, alert_id: str, label: str, log: Path) -> tuple[int, int]:
    """(the review's HTTP status, the console's exit status); what it printed is in `log`."""
    token = json.loads((out / "console.json").read_text())["token"]
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    with log.open("w") as sink:
        console = subprocess.Popen([sys.executable, "-m", "local.console", "--from-demo", str(out), "--port", str(port)],
                                   stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while "Vigil console" not in log.read_text() and time.monotonic() < deadline and console.poll() is None:
            time.sleep(0.2)
        with httpx.Client(base_url=origin, timeout=30) as browser:
            assert browser.get(f"/alerts?token={token}").status_code == 303
            page = browser.get(f"/alerts/{alert_id}").text
            review = browser.post(f"/alerts/{alert_id}/review", headers={"Origin": origin}, data={
                "label": label, "csrf_token": CSRF.search(page).group(1), "seen": SEEN.search(page).group(1)})
        console.terminate()
        return review.status_code, console.wait(timeout=60)
    finally:
        if console.poll() is None:
            console.kill()
            console.wait()
