"""Fixtures for the console: a moto server seeded with alerts cut from the bundled sample video (real
H.264 decoded with PyAV, real JPEG snapshots and MP4 clips in S3, real DynamoDB items), the console
app on top of it, and an ALB-style OIDC signing key."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from starlette.testclient import TestClient

from console.app import create_app
from console.demo import DEFAULT_CAMERAS, create_console_tables, seed
from console.settings import ConsoleSettings
from contracts.alert import AlertRecord
from worker.local.stack import LocalStack

HISTORY_TABLE = "vigil-alert-history"
AUDIT_TABLE = "vigil-console-audit"
ALB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/vigil-console/50dc6c495c0c9188"
KEY_ID = "c9a2d7c1-0e3b-4d3e-9c55-5d1c7a0f2b11"


@dataclass
class World:
    stack: LocalStack
    alerts: list[AlertRecord]  # oldest first
    s3: Any
    dynamodb: Any

    def newest_first(self, *, site: str | None = None, camera: str | None = None) -> list[str]:
        chosen = [a for a in self.alerts if (site is None or a.site == site) and (camera is None or a.camera_id == camera)]
        return [a.alert_id for a in sorted(chosen, key=lambda a: a.started_at, reverse=True)]

    def by_camera(self, camera_id: str) -> list[AlertRecord]:
        return [a for a in self.alerts if a.camera_id == camera_id]


@pytest.fixture
def world(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> World:
    """GIVEN 7 alerts on lobby-1@demo-hq (5) and dock-2@demo-port (2), the newest one's clip not cut yet."""
    monkeypatch.setenv("VIGIL_ALERT_HISTORY_TABLE", HISTORY_TABLE)
    dynamodb, s3 = local_stack.client("dynamodb"), local_stack.client("s3")
    create_console_tables(dynamodb, HISTORY_TABLE, AUDIT_TABLE)
    alerts = seed(s3, dynamodb, bucket=local_stack.names.bucket, history_table=HISTORY_TABLE,
                  state_table=local_stack.names.state_table, cameras=DEFAULT_CAMERAS)
    return World(local_stack, sorted(alerts, key=lambda a: a.started_at), s3, dynamodb)


def make_settings(**overrides: Any) -> ConsoleSettings:
    values: dict[str, Any] = {"history_table": HISTORY_TABLE, "audit_table": AUDIT_TABLE,
                              "token": "t" * 32, "secret": "s" * 32}
    values.update(overrides)
    return ConsoleSettings.model_validate(values)


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()  # with '=' padding, as the ALB sends it


@dataclass
class AlbSigner:
    """Signs tokens the way the ALB does (ES256, `signer` and `kid` in the header)."""

    private_key: ec.EllipticCurvePrivateKey
    pem: bytes

    def key_source(self, kid: str) -> bytes:
        if kid != KEY_ID:
            raise KeyError(kid)
        return self.pem

    def token(self, claims: dict[str, Any], *, signer: str = ALB_ARN, kid: str = KEY_ID,
              exp: float | None = None, key: ec.EllipticCurvePrivateKey | None = None) -> str:
        header = {"alg": "ES256", "kid": kid, "signer": signer, "iss": "https://cognito-idp.us-east-1.amazonaws.com/x",
                  "client": "console", "exp": int(exp if exp is not None else time.time() + 120)}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        der = (key or self.private_key).sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.fixture
def alb_signer() -> AlbSigner:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return AlbSigner(key, pem)
