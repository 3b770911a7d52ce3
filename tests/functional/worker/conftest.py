"""Fixtures for the worker's functional tests: the fake endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from worker_fake_endpoint import FakeEndpoint, serve_fake_endpoint


@pytest.fixture
def fake_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEndpoint]:
    """The fake SageMaker endpoint on 127.0.0.1; this process's boto3 sagemaker-runtime points at it."""
    with serve_fake_endpoint() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoint.url)
        yield endpoint
