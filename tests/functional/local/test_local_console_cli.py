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
