"""Fixtures for the console: a moto server seeded with alerts cut from the bundled sample video (real
H.264 decoded with PyAV, real JPEG snapshots and MP4 clips in S3, real DynamoDB items), the console
app on top of it, and an ALB-style OIDC signing key (helpers: `console_world`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from console_world import AUDIT_TABLE, HISTORY_TABLE, AlbSigner, World, make_settings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient

from console.app import create_app
from local.console_seed import DEFAULT_CAMERAS, create_console_tables, seed
from local.stack import LocalStack


@pytest.fixture
def world(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> World:
    """GIVEN 7 alerts on lobby-1@demo-hq (5) and dock-2@demo-port (2), the newest one's clip not cut yet."""
    monkeypatch.setenv("VIGIL_ALERT_HISTORY_TABLE", HISTORY_TABLE)
    dynamodb, s3 = local_stack.client("dynamodb"), local_stack.client("s3")
    create_console_tables(dynamodb, HISTORY_TABLE, AUDIT_TABLE)
    alerts = seed(s3, dynamodb, bucket=local_stack.names.bucket, history_table=HISTORY_TABLE,
                  state_table=local_stack.names.state_table, cameras=DEFAULT_CAMERAS)
    return World(local_stack, sorted(alerts, key=lambda a: a.started_at), s3, dynamodb)


@pytest.fixture
def console_client(world: World) -> Callable[..., TestClient]:
    """`console_client(sign_in=True, **settings)`: a TestClient of the console over the world."""

    def _make(sign_in: bool = True, key_source: Any = None, base_url: str = "http://127.0.0.1:8080",
              **overrides: Any) -> TestClient:
        settings = make_settings(**overrides)
        client = TestClient(create_app(settings, key_source=key_source), base_url=base_url,
                            follow_redirects=False)
        if sign_in and settings.auth_mode == "token":
            response = client.get(f"/alerts?token={settings.token}")
            assert response.status_code == 303
        return client

    return _make


@pytest.fixture
def client(console_client: Callable[..., TestClient]) -> Iterator[TestClient]:
    with console_client() as signed_in:
        yield signed_in


@pytest.fixture
def alb_signer() -> AlbSigner:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return AlbSigner(key, pem)
