"""Who is asking: every page and action needs an authenticated operator.

- `alb` (AWS): the internal ALB authenticates with Cognito (OIDC) and forwards `x-amzn-oidc-data`, a
  JWT it signs with ES256, and `x-amzn-oidc-identity` (the user's `sub`). We verify the signature with
  the key the region publishes for its `kid` (`https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`;
  `KeySource` makes it injectable), that `signer` is our load balancer, that it has not expired, and
  that the identity header matches. Sites come from claims (`access.access_from_claims`).
- `token` (local): the console prints `http://127.0.0.1:PORT/?token=...` at start-up; that URL sets a
  signed session cookie (HttpOnly, SameSite=Strict) and redirects to the same page without the token.

Anything missing, forged or expired is `Unauthorized` (401).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.requests import Request

from console.access import SCENE_EDITORS, Role, SiteAccess, access_from_claims, role_from_claims
from console.operators import OperatorRegistry
from console.settings import ConsoleSettings

logger = logging.getLogger(__name__)

OIDC_DATA_HEADER = "x-amzn-oidc-data"
OIDC_IDENTITY_HEADER = "x-amzn-oidc-identity"
SESSION_COOKIE = "vigil_session"
TOKEN_PARAM = "token"
SESSION_MAX_AGE_S = 12 * 3600
CLOCK_SKEW_S = 60
SIGN_IN_LIMIT = 5
SIGN_IN_WINDOW_S = 300.0
"""At most SIGN_IN_LIMIT wrong tokens per client address within SIGN_IN_WINDOW_S."""

KeySource = Callable[[str], bytes]
"""`kid` -> PEM public key (ALB mode)."""

_KID = re.compile(r"^[A-Za-z0-9-]{1,128}$")


class Unauthorized(Exception):
    """No valid credentials; the message says what was wrong (shown on the 401 page)."""


@dataclass(frozen=True)
class Operator:
    subject: str
    name: str
    access: SiteAccess
    role: Role = "operator"

    @property
    def can_edit_scenes(self) -> bool:
        return self.role in SCENE_EDITORS


def alb_key_source(region: str) -> KeySource:
    """The ALB's regional public key endpoint, one fetch per `kid` (keys are immutable per kid)."""

    @lru_cache(maxsize=32)
    def fetch(kid: str) -> bytes:
        url = f"https://public-keys.auth.elb.{region}.amazonaws.com/{kid}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return bytes(response.read())

    return fetch


def _b64decode(part: str) -> bytes:
    # The ALB pads its base64url segments with '=' (most JWT libraries refuse that); accept both.
    part = part.rstrip("=")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_alb_token(token: str, *, expected_signer: str, key_source: KeySource, now: float | None = None) -> dict:
    """The claims of a valid ALB OIDC token; `Unauthorized` otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthorized("the OIDC token is not a JWT")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unauthorized("the OIDC token is not readable") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Unauthorized("the OIDC token is not readable")
    if header.get("alg") != "ES256":
        raise Unauthorized(f"the OIDC token's algorithm {header.get('alg')!r} is not ES256")
    if header.get("signer") != expected_signer:
        raise Unauthorized("the OIDC token was not signed by this console's load balancer")
    kid = str(header.get("kid", ""))
    if not _KID.match(kid):
        raise Unauthorized("the OIDC token has no usable key id")
    if len(signature) != 64:
        raise Unauthorized("the OIDC token's signature is malformed")
    try:
        key = load_pem_public_key(key_source(kid))
    except Exception as exc:  # a fetch or parse failure: no way to verify, so no entry
        logger.warning("no public key for kid %s: %s", kid, exc)
        raise Unauthorized("the OIDC token's signing key could not be obtained") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Unauthorized("the OIDC signing key is not an EC key")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise Unauthorized("the OIDC token's signature is not valid") from exc
    expires = header.get("exp", claims.get("exp"))
    if not isinstance(expires, int | float) or expires + CLOCK_SKEW_S < (now if now is not None else time.time()):
        raise Unauthorized("the OIDC token has expired")
    if not claims.get("sub"):
        raise Unauthorized("the OIDC token names no user")
    return claims


def _sign(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def session_cookie(secret: str, subject: str, now: float | None = None, sid: str | None = None) -> str:
    claims = {"sub": subject, "iat": int(now if now is not None else time.time()), "sid": sid or secrets.token_hex(8)}
    payload = json.dumps(claims).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _sign(secret, payload)


def read_session_cookie(secret: str, value: str, now: float | None = None) -> str:
    """The subject of a valid session cookie; `Unauthorized` otherwise."""
    return read_session(secret, value, now)[0]


def read_session(secret: str, value: str, now: float | None = None) -> tuple[str, str]:
    """(subject, session id) of a valid session cookie; `Unauthorized` otherwise."""
    encoded, _, signature = value.partition(".")
    try:
        payload = _b64decode(encoded)
        claims = json.loads(payload)
    except ValueError as exc:
        raise Unauthorized("the session cookie is not readable; open the URL printed at start-up") from exc
    if not isinstance(claims, dict):
        raise Unauthorized("the session cookie is not readable; open the URL printed at start-up")
    if not hmac.compare_digest(_sign(secret, payload), signature):
        raise Unauthorized("the session cookie is forged or from another console; open the URL printed at start-up")
    if int(claims.get("iat", 0)) + SESSION_MAX_AGE_S < (now if now is not None else time.time()):
        raise Unauthorized("the session has expired; open the URL printed at start-up again")
    return str(claims["sub"]), str(claims.get("sid", ""))


class SignInThrottle:
    """Wrong tokens per client address: after `limit` within `window_s`, sign-in from that address is
    refused (429) until the oldest failure leaves the window."""

    def __init__(self, limit: int = SIGN_IN_LIMIT, window_s: float = SIGN_IN_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self.failures: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def retry_after(self, address: str, now: float | None = None) -> int:
        """Seconds until `address` may try again; 0 when it may now."""
        now = time.monotonic() if now is None else now
        with self.lock:
            recent = self.failures.get(address)
            if recent is None:
                return 0
            while recent and recent[0] <= now - self.window_s:
                recent.popleft()
            if not recent:
                del self.failures[address]
                return 0
            return 0 if len(recent) < self.limit else int(recent[0] + self.window_s - now) + 1

    def failed(self, address: str, now: float | None = None) -> None:
        with self.lock:
            if len(self.failures) > 10_000:  # a flood of addresses: forget the oldest
                self.failures.pop(next(iter(self.failures)))
            self.failures.setdefault(address, deque()).append(time.monotonic() if now is None else now)


class Authenticator:
    def __init__(self, settings: ConsoleSettings, key_source: KeySource | None = None) -> None:
        self.settings = settings
        self.key_source = key_source or alb_key_source(settings.region)
        self.registry = OperatorRegistry.load(settings.operators_file) if settings.operators_file else None
        self.revoked: dict[str, float] = {}
        self.lock = threading.Lock()

    def check_token(self, token: str) -> bool:
        return self.sign_in(token) is not None

    def sign_in(self, token: str) -> str | None:
        """The operator a login token belongs to (token mode), or None."""
        if self.settings.auth_mode != "token":
            return None
        if self.registry is not None:
            named = self.registry.match(token)
            return named.name if named else None
        return self.settings.local_operator if hmac.compare_digest(token, self.settings.token) else None

    def sign_out(self, request: Request) -> None:
        """Revoke this session's cookie (it stays refused until it would have expired anyway)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return
        try:
            _, sid = read_session(self.settings.secret, cookie)
        except Unauthorized:
            return
        now = time.time()
        with self.lock:
            self.revoked = {s: until for s, until in self.revoked.items() if until > now}
            self.revoked[sid] = now + SESSION_MAX_AGE_S

    def operator(self, request: Request) -> Operator:
        if self.settings.auth_mode == "alb":
            return self._alb_operator(request)
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise Unauthorized("not signed in: open the console URL printed at start-up (it carries the token)")
        subject, sid = read_session(self.settings.secret, cookie)
        if sid in self.revoked:
            raise Unauthorized("signed out: open your console URL (with your token) to sign in again")
        if self.registry is not None:
            named = self.registry.get(subject)
            if named is None:
                raise Unauthorized(f"operator {subject} is no longer in the operators file")
            return Operator(subject=subject, name=subject, access=named.access, role=named.role)
        return Operator(subject=subject, name=subject, access=self.settings.local_access, role="supervisor")

    def local_subject(self) -> str:
        return self.settings.local_operator

    def _alb_operator(self, request: Request) -> Operator:
        token = request.headers.get(OIDC_DATA_HEADER)
        if not token:
            raise Unauthorized("not signed in: the load balancer sent no OIDC token")
        claims: dict[str, Any] = verify_alb_token(
            token, expected_signer=self.settings.alb_arn, key_source=self.key_source
        )
        identity = request.headers.get(OIDC_IDENTITY_HEADER)
        if identity is not None and identity != claims["sub"]:
            raise Unauthorized("the OIDC identity header does not match the token")
        access = access_from_claims(claims, self.settings.sites_claim, self.settings.group_sites)
        name = str(claims.get("email") or claims.get("username") or claims.get("cognito:username") or claims["sub"])
        role = role_from_claims(claims, self.settings.supervisor_groups)
        return Operator(subject=str(claims["sub"]), name=name, access=access, role=role)
