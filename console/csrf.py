"""CSRF protection for the console's actions (all POSTs).

Two checks, both must pass:
1. the request is not cross-site: a browser's `Sec-Fetch-Site: cross-site` or an `Origin` that is
   not this console's own origin is refused;
2. the form carries `csrf_token` = HMAC(secret, operator | nonce), where the nonce lives in a
   `vigil_csrf` cookie (HttpOnly, SameSite=Strict) set with the page that holds the form.
A failure is `CsrfRejected` (403).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

logger = logging.getLogger(__name__)

CSRF_COOKIE = "vigil_csrf"
CSRF_FIELD = "csrf_token"


class CsrfRejected(Exception):
    """A POST that may come from another site; the message says why (shown on the 403 page)."""


def nonce(request: Request) -> tuple[str, bool]:
    """The request's CSRF nonce and whether it is new (then the response must set the cookie)."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and len(existing) >= 16:
        return existing, False
    return secrets.token_urlsafe(24), True


def token(secret: str, subject: str, nonce_value: str) -> str:
    return hmac.new(secret.encode(), f"csrf|{subject}|{nonce_value}".encode(), hashlib.sha256).hexdigest()


def own_origin(request: Request, trusted_proxy: bool) -> str:
    """This console's origin as the browser sees it. Behind a trusted proxy (the ALB) the
    X-Forwarded-Proto/-Host it sets say what that was; from anyone else they are ignored, or a
    client could name any host and pass the origin check (S5)."""
    proto, host = request.url.scheme, request.headers.get("host", "")
    if trusted_proxy:
        proto = request.headers.get("x-forwarded-proto", proto)
        host = request.headers.get("x-forwarded-host", host)
    return f"{proto}://{host}".lower()


def check(request: Request, secret: str, subject: str, submitted: str | None, *, trusted_proxy: bool = False) -> None:
    """Raise `CsrfRejected` unless the POST is same-origin and carries this operator's token."""
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        raise CsrfRejected("cross-site request refused")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if f"{parts.scheme}://{parts.netloc}".lower() != own_origin(request, trusted_proxy):
            raise CsrfRejected(f"request from another origin ({origin}) refused")
    elif origin == "null":
        raise CsrfRejected("request from an opaque origin refused")
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        raise CsrfRejected("the form has no CSRF token; reload the page and try again")
    if not hmac.compare_digest(token(secret, subject, cookie), submitted):
        raise CsrfRejected("the form's CSRF token is not valid; reload the page and try again")
