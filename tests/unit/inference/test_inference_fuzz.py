"""Property: whatever bytes arrive with whatever supported content type, the handler answers 200 or a
client error (4xx), never a 500 — for the trained frame model and for a temporal model."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from inference.inference import InferenceError, input_fn, model_fn, output_fn, predict_fn

CONTENT_TYPES = ("application/x-npy", "image/jpeg", "image/png", "application/json")
MAGIC = (b"", b"\x93NUMPY\x01\x00", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b'{"instances": [{"frames": ["')
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def png(height: int, width: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 7, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def status_of(model, body: bytes, content_type: str) -> int:
    """The HTTP status the endpoint answers with (200, or the InferenceError's)."""
    try:
        output_fn(predict_fn(input_fn(body, content_type), model), "application/json")
    except InferenceError as exc:
        return exc.status
    return 200


random_bodies = st.tuples(st.sampled_from(MAGIC), st.binary(max_size=512)).map(lambda parts: parts[0] + parts[1])
small_arrays = st.builds(
    lambda shape, dtype: np.ones(shape, dtype=dtype),
    st.lists(st.integers(1, 5), min_size=1, max_size=6).map(lambda dims: (*dims[:-1], 3) if len(dims) > 2 else dims),
    st.sampled_from([np.uint8, np.uint8, np.int16, np.float32, np.bool_]),
)
json_requests = st.lists(
    st.lists(
        st.one_of(st.binary(max_size=64), st.tuples(st.integers(1, 6), st.integers(1, 6)).map(lambda hw: png(*hw))),
        min_size=0, max_size=4,
    ).map(lambda images: {"frames": [base64.b64encode(image).decode() for image in images]}),
    min_size=0, max_size=4,
).map(lambda items: json.dumps({"instances": items}).encode())


@pytest.fixture(params=["frame", "temporal"])
def fuzz_model(request, tiny_model_dir, temporal_model_dir):
    return model_fn(tiny_model_dir if request.param == "frame" else temporal_model_dir)


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_random_bytes_never_yield_a_500(fuzz_model, content_type):
    @FUZZ
    @given(body=random_bodies)
    def check(body: bytes) -> None:
        assert status_of(fuzz_model, body, content_type) in (200, 400, 413, 415)

    check()


def test_random_npy_arrays_never_yield_a_500(fuzz_model):
    @FUZZ
    @given(array=small_arrays)
    def check(array: np.ndarray) -> None:
        assert status_of(fuzz_model, npy(array), "application/x-npy") in (200, 400, 413)

    check()


def test_random_json_requests_never_yield_a_500(fuzz_model):
    @FUZZ
    @given(body=json_requests)
    def check(body: bytes) -> None:
        assert status_of(fuzz_model, body, "application/json") in (200, 400, 413)

    check()
