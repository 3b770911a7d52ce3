"""Fixtures for the training tests: write a manifest next to clips made with `make_video`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_manifest() -> Callable[..., Path]:
    """`write_manifest(folder, [line, ...])` -> folder/manifest.jsonl with one JSON object per line."""

    def _write(folder: Path, lines: list[dict]) -> Path:
        path = folder / "manifest.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        return path

    return _write
