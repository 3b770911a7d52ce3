"""`python -m console` on bad input: one clear line and a non-zero exit, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

from console.__main__ import main


def test_port_in_use_is_one_line_and_exit_2(capsys) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert main(["--port", str(port)]) == 2
    assert capsys.readouterr().err == (
        f"console: port {port} on 127.0.0.1 is already in use; stop what holds it or pick another port\n"
    )


def test_alb_mode_without_a_load_balancer_is_refused(monkeypatch, capsys) -> None:
    monkeypatch.setenv("VIGIL_CONSOLE_AUTH", "alb")
    assert main(["--port", "0"]) == 2
    assert "VIGIL_CONSOLE_ALB_ARN must name the load balancer" in capsys.readouterr().err


def test_help_runs_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "console", "--help"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and "--port" in result.stdout
