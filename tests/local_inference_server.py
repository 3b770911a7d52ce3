"""`python -m inference.serve` on a free port for the tests that talk to the real local endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from local.stack import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def serving(model: Path, log_path: Path, timeout_s: float = 120.0) -> Iterator[str]:
    """Serve `model` (a folder or model.tar.gz) until the block ends; yields the base URL once `/ping`
    answers 200. Fails with the server's log if it exits or does not answer within `timeout_s`."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "inference.serve", "--model", str(model), "--port", str(port)],
            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=log, env=os.environ.copy(),
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    if httpx.get(url + "/ping", timeout=30).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)
