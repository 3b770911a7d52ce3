"""Every command line of the project answers `--help` with its usage and exit status 0 (issue 22: one
of them crashed on a `%` in a help text). Found by reading the sources: each `__main__.py` and each
module with an `if __name__ == "__main__":` block; run in-process as `python -m` would run it."""

from __future__ import annotations

import contextlib
import io
import runpy
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PACKAGES = ("contracts", "kvs", "archive", "worker", "training", "inference", "alert_lambda", "console", "local")


def command_modules() -> list[str]:
    found = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if path.name == "__main__.py" or 'if __name__ == "__main__":' in text:
                parts = path.relative_to(REPO).with_suffix("").parts
                found.add(".".join(parts[:-1] if parts[-1] == "__main__" else parts))
    return sorted(found)


def test_the_commands_are_found() -> None:
    assert {"worker", "training", "archive", "local.demo", "inference.serve"} <= set(command_modules())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # runpy: the package imported its module first
@pytest.mark.parametrize("module", command_modules())
def test_help_prints_usage_and_exits_0(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN `python -m <module> --help`
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    out = io.StringIO()
    # WHEN it runs THEN it prints its usage and exits 0
    with pytest.raises(SystemExit) as exited, contextlib.redirect_stdout(out):
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert (exited.value.code in (0, None), "usage:" in out.getvalue()) == (True, True), out.getvalue()[-500:]
