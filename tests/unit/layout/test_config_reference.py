"""The configuration reference (docs/configuration.md) is generated from the pydantic models by
`docs/gen_config.py`: a field without a description would be a blank cell there, so it fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def gen_config():
    spec = importlib.util.spec_from_file_location("gen_config", REPO / "docs" / "gen_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator():
    return gen_config()


def test_every_field_of_the_documented_models_has_a_description(generator) -> None:
    # GIVEN every field of the worker's and the console's settings, nested models included
    undescribed = [
        f"{model.__name__}: {'.'.join(path)}"
        for _, model, _, _ in generator._models()
        for path, info in generator.fields(model)
        if not (info.description or "").strip()
    ]
    # THEN each has a description for the reference to show
    assert undescribed == []


def test_the_reference_lists_every_field_once_with_its_default_and_bounds(generator) -> None:
    # GIVEN the generated page
    page = generator.render()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    # THEN there is one row per field, and a row shows the default and bounds the model declares
    expected = [path for _, model, _, _ in generator._models() for path, _ in generator.fields(model)]
    assert len(rows) == len(expected)
    assert ("| `policy.min_frames` | int | `2` | ≥ 1, ≤ 100 |  | Consecutive analysed frames at or over the "
            "threshold to open an event. |") in rows
    assert any(row.startswith("| `sample_fps` | float | `5.0` | > 0.0, ≤ 30.0 | `VIGIL_FRAME_SAMPLE_FPS` |")
               for row in rows)


def test_a_field_without_a_description_is_found(generator) -> None:
    # GIVEN a model with an undescribed field WHEN the fields are walked THEN its path is there, undescribed
    from pydantic import BaseModel, Field

    class Inner(BaseModel):
        knob: int = 3

    class Outer(BaseModel):
        inner: Inner = Field(default_factory=Inner, description="Nested.")

    found = {".".join(path): info.description for path, info in generator.fields(Outer)}
    assert found == {"inner": "Nested.", "inner.knob": None}
