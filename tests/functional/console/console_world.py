"""What the console tests share besides fixtures: the tables, the seeded world, settings, and an
ALB-style OIDC token signer. A module of its own name: `from conftest import ...` picks up whichever
conftest was imported first when several test folders run together."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from console.settings import ConsoleSettings
from contracts.alert import AlertRecord
from local.stack import LocalStack

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


def make_settings(**overrides: Any) -> ConsoleSettings:
    values: dict[str, Any] = {"history_table": HISTORY_TABLE, "audit_table": AUDIT_TABLE,
                              "token": "t" * 32, "secret": "s" * 32}
    values.update(overrides)
    return ConsoleSettings.model_validate(values)


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
