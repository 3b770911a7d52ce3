"""The console's web application: routes, page rendering, and the error pages.

Pages (GET): `/alerts` (list with filters), `/alerts/{alert_id}` (one alert: snapshot with regions,
clip, the score trace around the event, other alerts of the camera, review), `/cameras` (fleet health),
`/cameras/{camera_id}/scene` (the camera's zones, privacy masks and arming schedule over its latest
snapshot). Actions (POST): `/alerts/{alert_id}/review`, `/cameras/{camera_id}/scene` (supervisors).
`/healthz` answers the load balancer without authentication. Every other route needs an operator
(`auth`); every POST passes `csrf`. Another site's alert is a 404, as if it did not exist.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode
from zoneinfo import ZoneInfo

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console import csrf, live
from console.auth import (
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    TOKEN_PARAM,
    Authenticator,
    KeySource,
    Operator,
    SignInThrottle,
    Unauthorized,
    session_cookie,
)
from console.cameras import DEFAULT_STALE_AFTER_S, camera_row, read_statuses
from console.charts import ScoreChart, ScorePoint, TraceChart, fitted_window
from console.csrf import CsrfRejected
from console.feedback import write_label
from console.media import MediaLink, media_link, score_trace
from console.scenes import (
    SceneConflict,
    SceneInvalid,
    SceneView,
    camera_status,
    read_scene,
    save_scene,
    validate,
)
from console.settings import ConsoleSettings
from console.store import VERDICT_TEXT, AlertFilter, AlertRow, AlertStore, ReviewConflict, SeenReview
from contracts.alert import Severity, utc_iso
from contracts.camera_status import CameraStatus

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
CHART_WINDOW = timedelta(minutes=30)
MAX_FORM_BYTES = 8192
MAX_SCENE_FORM_BYTES = 256 * 1024
"""A scene form: up to 64 shapes of 64 points and a year of schedule exceptions, URL-encoded JSON."""
MAX_BULK = 50
PAGE_SIZE = 25
KNOWN_EVENT_TYPES = ("scene_anomaly", "intrusion", "loitering", "camera_tamper")
"""Offered in the event filter besides those of the alerts shown (the model's, the zones', tamper)."""
SEEN_FIELD = "seen"
"""The review form's hidden field: the review state (`SeenReview.token`) the page was rendered with."""

_BOTO_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})


class Forbidden(Exception):
    """Authenticated, but not allowed (an operator with no site)."""


@dataclass
class Console:
    settings: ConsoleSettings
    auth: Authenticator
    throttle: SignInThrottle
    store: AlertStore
    dynamodb: Any
    s3: Any
    templates: Jinja2Templates


def _templates(site_timezones: dict[str, str]) -> Jinja2Templates:
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True)
    )
    environment.globals["verdicts"] = VERDICT_TEXT
    environment.filters["utc"] = lambda value: utc_iso(value).replace("T", " ").replace("Z", " UTC")
    zones = {site: ZoneInfo(zone) for site, zone in site_timezones.items()}

    def site_time(value: datetime | str | None, site: str | None = None, with_date: bool = True) -> Markup:
        """`<time>` in the site's time zone (UTC when it has none), the UTC time on hover; never wraps."""
        if value is None or value == "":
            return Markup('<span class="muted">none</span>')
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
        zone = zones.get(site or "", UTC)
        local = when.astimezone(zone)
        shown = local.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
        label = local.tzname() if zone is not UTC else "UTC"
        utc = utc_iso(when).replace("T", " ").replace("Z", " UTC")
        return Markup('<time class="t" datetime="{}" title="{}">{} <span class="tz">{}</span></time>').format(
            utc_iso(when), utc, shown, label)

    environment.filters["site_time"] = site_time
    return Jinja2Templates(env=environment)


class SecurityHeaders:
    """Headers on every response: no framing, no sniffing, no referrer to other origins (pages carry presigned URLs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend([
                    (b"content-security-policy", (b"default-src 'none'; style-src 'self'; script-src 'self'; "
                     b"connect-src 'self'; img-src 'self' http: https:; "
                     b"media-src http: https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),  # no-referrer would make form POSTs send Origin: null
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"),
                ])
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _console(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


def _secure(request: Request) -> bool:
    if _trusted_proxy(request):
        return request.headers.get("x-forwarded-proto", request.url.scheme) == "https"
    return request.url.scheme == "https"


def render(request: Request, operator: Operator | None, template: str, status_code: int = 200,
           **context: Any) -> Response:
    console = _console(request)
    nonce, new = csrf.nonce(request)
    context.update(operator=operator, request=request, live_since=utc_iso(datetime.now(UTC)))
    if operator is not None:
        context["csrf_token"] = csrf.token(console.settings.secret, operator.subject, nonce)
    response = console.templates.TemplateResponse(request, template, context, status_code=status_code)
    if new:
        response.set_cookie(csrf.CSRF_COOKIE, nonce, httponly=True, samesite="strict", secure=_secure(request))
    return response


Handler = Callable[[Request, Operator], Response]


def authenticated(handler: Handler, max_body: int = MAX_FORM_BYTES) -> Callable[[Request], Awaitable[Response]]:
    """Sign in with `?token=` (local), then require an operator with at least one site.

    The handler is plain blocking code (boto3) and runs in Starlette's thread pool, never on the
    event loop: a slow listing must not stall `/healthz` or other operators (S1). A POST's body is
    read here, on the loop, and handed over as `request.state.body`."""

    async def endpoint(request: Request) -> Response:
        console = _console(request)
        if request.method == "GET" and TOKEN_PARAM in request.query_params:
            return await run_in_threadpool(_login, request, console)
        operator = await run_in_threadpool(console.auth.operator, request)
        if operator.access.empty:
            raise Forbidden(f"operator {operator.name} is not assigned to any site")
        if request.method == "POST":
            request.state.body = await _body(request, max_body)
        return await run_in_threadpool(handler, request, operator)

    return endpoint


async def _body(request: Request, limit: int = MAX_FORM_BYTES) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, "form too large")
    return body


def _trusted_proxy(request: Request) -> bool:
    return _console(request).settings.trusts_proxy(request.client.host if request.client else None)


def _client_address(request: Request) -> str:
    """Who is asking: the peer, or behind a trusted proxy the address it appended to X-Forwarded-For."""
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and _trusted_proxy(request):
        return forwarded.split(",")[-1].strip() or peer
    return peer


class TooManyAttempts(Exception):
    """Too many wrong tokens from one address (429)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many wrong tokens from your address; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def _login(request: Request, console: Console) -> Response:
    address = _client_address(request)
    wait = console.throttle.retry_after(address)
    if wait:
        logger.warning("sign-in throttled from %s (%d wrong tokens within %.0f s)", address,
                       console.throttle.limit, console.throttle.window_s)
        raise TooManyAttempts(wait)
    name = console.auth.sign_in(request.query_params[TOKEN_PARAM])
    if name is None:
        console.throttle.failed(address)
        logger.warning("sign-in refused from %s: wrong token", address)
        raise Unauthorized("the token is not this console's: use the URL printed at start-up")
    rest = [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_PARAM]
    target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_cookie(console.settings.secret, name),
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    logger.info("operator %s signed in from %s", name, address)
    return response


@authenticated
def sign_out(request: Request, operator: Operator) -> Response:
    console = _console(request)
    form = {k: v[0] for k, v in parse_qs(request.state.body.decode("utf-8", "replace")).items()}
    csrf.check(request, console.settings.secret, operator.subject, form.get(csrf.CSRF_FIELD),
               trusted_proxy=_trusted_proxy(request))
    console.auth.sign_out(request)
    logger.info("operator %s signed out from %s", operator.name, _client_address(request))
    response = render(request, None, "error.html", status=200, title="Signed out",
                      message="You are signed out. Open your console URL (with your token) to sign in again.")
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict", secure=_secure(request))
    return response


# -- pages ---------------------------------------------------------------------------------------------


@authenticated
def home(request: Request, operator: Operator) -> Response:
    return RedirectResponse("/alerts", status_code=303)


@authenticated
def alert_list(request: Request, operator: Operator) -> Response:
    console = _console(request)
    params = dict(request.query_params)
    try:
        flt = AlertFilter.from_query(params)
    except ValidationError as exc:
        problem = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'dates'}: {e['msg']}" for e in exc.errors())
        raise HTTPException(400, f"bad filter: {problem}") from exc
    page = console.store.list(operator.access, flt, PAGE_SIZE)
    kept = {k: v for k, v in params.items() if k in AlertFilter.model_fields and k != "cursor" and v}
    next_url = f"/alerts?{urlencode({**kept, 'cursor': page.next_cursor})}" if page.next_cursor else None
    statuses, _ = read_statuses(console.dynamodb, console.settings.state_table, operator.access)
    thumbs = {row.alert.alert_id: _media_url(row.alert.alert_id, "snapshot")
              for row in page.rows if row.alert.snapshot is not None}
    return render(
        request, operator, "alerts.html", page=page, flt=flt, next_url=next_url, thumbs=thumbs,
        bulk=_bulk_notice(request.query_params.get("bulk")),
        back=request.url.path + (f"?{urlencode({k: v for k, v in params.items() if k != 'bulk'})}"
                                 if any(k != "bulk" for k in params) else ""),
        severities=[s.value for s in Severity],
        known_sites=sorted(operator.access.sites) if not operator.access.all_sites
        else sorted({s.site for s in statuses} | ({flt.site} if flt.site else set())),
        known_cameras=sorted({s.camera_id for s in statuses}),
        known_events=sorted({row.alert.event_type for row in page.rows} | set(KNOWN_EVENT_TYPES)),
    )


def _presign(console: Console, bucket: str, key: str, expires_in_s: int) -> str:
    """A presigned GET (computed locally, no request): thumbnails are the alert's snapshot, shown small."""
    return str(console.s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                                 ExpiresIn=expires_in_s))


@authenticated
def alert_page(request: Request, operator: Operator) -> Response:
    console = _console(request)
    alert_id = request.path_params["alert_id"]
    row = console.store.get(alert_id, operator.access)
    if row is None:
        raise HTTPException(404, f"no alert {alert_id} (or not one of your sites)")
    alert = row.alert
    expiry = console.settings.link_expiry_s
    neighbours = console.store.camera_alerts_around(alert, CHART_WINDOW)
    points = [
        ScorePoint((other.alert.started_at - alert.started_at).total_seconds(), other.alert.score,
                   other.alert.alert_id == alert.alert_id)
        for other in neighbours
    ] or [ScorePoint(0.0, alert.score, True)]
    window_s = fitted_window([p.offset_s for p in points], CHART_WINDOW.total_seconds())
    chart = ScoreChart(points, alert.threshold, window_s)
    trace = score_trace(console.s3, alert.clip)
    trace_svg = None
    if trace.trace is not None:
        found = trace.trace
        trace_svg = TraceChart.of(found.points, found.threshold, found.pre_roll_s, found.post_roll_s).svg()
    return render(
        request, operator, "alert.html", row=row, alert=alert,
        snapshot=_checked(media_link(console.s3, alert.snapshot, "snapshot", expiry), alert.alert_id, "snapshot"),
        clip=_checked(media_link(console.s3, alert.clip, "clip", expiry), alert.alert_id, "clip"),
        chart_svg=chart.svg(), chart_points=len(points),
        trace=trace.trace, trace_svg=trace_svg, trace_missing=trace.missing,
        audit=console.store.audit_trail(alert.alert_id),
        zone=getattr(alert, "zone", None),  # alert schema 2 names the zone; schema 1 has none
        reviewed=_saved_notice(row, operator, request.query_params.get("reviewed")),
        done=_done_notice(console, operator, request.query_params.get("done")),
        seen_field=SEEN_FIELD,
        older=console.store.older(operator.access, row.sk),
        newer=console.store.newer(operator.access, row.sk),
        next_unreviewed_url=f"/triage/next?{urlencode({'from': row.sk})}",
    )


def _done_notice(console: Console, operator: Operator, alert_id: str | None) -> AlertRow | None:
    """After a keyboard review that moved on: the alert just reviewed, if this operator reviewed it."""
    if not alert_id:
        return None
    row = console.store.get(alert_id, operator.access)
    if row is None or row.review is None or row.review.by != operator.name:
        return None
    return row


MEDIA_KINDS = ("snapshot", "clip")


@authenticated
def media(request: Request, operator: Operator) -> Response:
    """The alert's snapshot or clip: a 303 to a presigned S3 link that lives `link_expiry_s` (120 s
    by default), given only to a signed-in operator of the alert's site. Pages link here, never to S3,
    so a copied page or URL does not open the footage without a session for an hour."""
    console = _console(request)
    alert_id, what = request.path_params["alert_id"], request.path_params["what"]
    if what not in MEDIA_KINDS:
        raise HTTPException(404, f"no {what} for alerts")
    row = console.store.get(alert_id, operator.access)
    obj = None if row is None else getattr(row.alert, what)
    if obj is None:
        raise HTTPException(404, f"no {what} of alert {alert_id} (or not one of your sites)")
    return RedirectResponse(_presign(console, obj.bucket, obj.key, console.settings.link_expiry_s), status_code=303)


def _media_url(alert_id: str, what: str) -> str:
    return f"/alerts/{quote(alert_id, safe='')}/media/{what}"


@authenticated
def next_unreviewed(request: Request, operator: Operator) -> Response:
    """The next alert to review (after `from`, an `sk`), or the list of unreviewed alerts when none is left."""
    console = _console(request)
    start = request.query_params.get("from") or None
    try:
        AlertFilter(cursor=start)
    except ValidationError as exc:
        raise HTTPException(400, "bad triage position: from is not a cursor of this listing") from exc
    row = console.store.next_unreviewed(operator.access, start)
    done = request.query_params.get("done")
    if row is None:
        return RedirectResponse("/alerts?review=unreviewed&triage=done", status_code=303)
    suffix = f"?{urlencode({'done': done})}" if done else ""
    return RedirectResponse(f"/alerts/{quote(row.alert.alert_id, safe='')}{suffix}", status_code=303)


def _checked(link: MediaLink, alert_id: str, what: str) -> MediaLink:
    """The page's link to an object that is there: the console's media route, not the S3 link itself."""
    return link if link.url is None else MediaLink(_media_url(alert_id, what), None)


def _saved_notice(row: AlertRow, operator: Operator, reviewed: str | None) -> str | None:
    """The "Review saved" notice only when the alert's review is that label, by this operator (S4):
    `?reviewed=` alone is any URL anyone can type."""
    if reviewed and row.review is not None and row.review.label == reviewed and row.review.by == operator.name:
        return reviewed
    return None


@authenticated
def review(request: Request, operator: Operator) -> Response:
    console = _console(request)
    body: bytes = request.state.body
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    csrf.check(request, console.settings.secret, operator.subject, form.get(csrf.CSRF_FIELD),
               trusted_proxy=_trusted_proxy(request))
    label = form.get("label")
    if label not in VERDICT_TEXT:
        raise HTTPException(400, f"label must be one of {', '.join(VERDICT_TEXT)}")
    alert_id = request.path_params["alert_id"]
    row = console.store.get(alert_id, operator.access)
    if row is None:
        raise HTTPException(404, f"no alert {alert_id} (or not one of your sites)")
    try:
        seen = SeenReview.parse(form.get(SEEN_FIELD, ""))
    except ValueError as exc:
        raise HTTPException(400, "the form does not say which review state it was loaded with; "
                                 "reload the page and review again") from exc
    if row.seen != seen:
        raise _stale(row, seen)
    try:
        console.store.review(row, label, operator.name, seen=seen)  # type: ignore[arg-type]
    except ReviewConflict as exc:
        fresh = console.store.get(alert_id, operator.access)
        raise _stale(fresh or row, seen) from exc
    try:
        write_label(console.s3, console.settings.archive_bucket, row.alert, label, operator.name)  # type: ignore[arg-type]
    except (ClientError, BotoCoreError) as exc:
        logger.error("feedback label not written alert_id=%s: %s", alert_id, exc)
        raise HTTPException(502, "the review is recorded but the training label could not be written to S3; "
                                 "submit the review again") from exc
    if form.get("then") == "next":
        return RedirectResponse(f"/triage/next?{urlencode({'from': row.sk, 'done': alert_id})}", status_code=303)
    return RedirectResponse(f"/alerts/{alert_id}?reviewed={label}", status_code=303)


@authenticated
def bulk_review(request: Request, operator: Operator) -> Response:
    """Review the ticked alerts of a list page at once. Each pick carries the review state its row was
    rendered with (`<alert_id>|<seen>`); one that changed since is left alone and counted, as a
    stale single review is a 409."""
    console = _console(request)
    form = parse_qs(request.state.body.decode("utf-8", "replace"))
    csrf.check(request, console.settings.secret, operator.subject, (form.get(csrf.CSRF_FIELD) or [None])[0],
               trusted_proxy=_trusted_proxy(request))
    label = (form.get("label") or [""])[0]
    if label not in VERDICT_TEXT:
        raise HTTPException(400, f"label must be one of {', '.join(VERDICT_TEXT)}")
    picks = form.get("pick", [])
    if not picks:
        raise HTTPException(400, "no alert ticked")
    if len(picks) > MAX_BULK:
        raise HTTPException(400, f"at most {MAX_BULK} alerts at once")
    saved, changed, missing = 0, 0, 0
    for pick in picks:
        alert_id, _, token = pick.partition("|")
        try:
            seen = SeenReview.parse(token)
        except ValueError as exc:
            raise HTTPException(400, "a ticked alert does not say which review state it was loaded with; "
                                     "reload the page") from exc
        row = console.store.get(alert_id, operator.access)
        if row is None:
            missing += 1
            continue
        try:
            if row.seen != seen:
                raise ReviewConflict(alert_id)
            console.store.review(row, label, operator.name, seen=seen)  # type: ignore[arg-type]
        except ReviewConflict:
            changed += 1
            continue
        try:
            write_label(console.s3, console.settings.archive_bucket, row.alert, label, operator.name)  # type: ignore[arg-type]
        except (ClientError, BotoCoreError) as exc:
            logger.error("feedback label not written alert_id=%s: %s", alert_id, exc)
            raise HTTPException(502, f"{saved + 1} reviews are recorded but the training label of {alert_id} "
                                     "could not be written to S3; review it again") from exc
        saved += 1
    logger.info("bulk review by %s: %s x%d, %d changed meanwhile, %d not found", operator.name, label, saved,
                changed, missing)
    back = form.get("back", ["/alerts"])[0]
    back = back if back.startswith("/alerts") and not back.startswith("//") else "/alerts"
    joiner = "&" if "?" in back else "?"
    result = urlencode({"bulk": f"{label}:{saved}:{changed}:{missing}"})
    return RedirectResponse(f"{back}{joiner}{result}", status_code=303)


def _bulk_notice(value: str | None) -> dict[str, Any] | None:
    parts = (value or "").split(":")
    if len(parts) != 4 or parts[0] not in VERDICT_TEXT or not all(p.isdigit() for p in parts[1:]):
        return None
    return {"label": VERDICT_TEXT[parts[0]], "saved": int(parts[1]), "changed": int(parts[2]),
            "missing": int(parts[3])}


def _stale(row: AlertRow, seen: SeenReview) -> HTTPException:
    """409: the alert's review changed after the operator's page was loaded; nothing was written."""
    now = row.review
    current = f"{now.text} by {now.by} at {now.at}" if now else "not reviewed"
    logger.info("stale review form alert_id=%s: seen %s, now %s", row.alert.alert_id, seen.token, row.seen.token)
    return StaleReview(f"This alert changed after your page was loaded: you saw \"{seen.describe()}\", "
                       f"it is now \"{current}\". Nothing was saved; open the alert again and review it.",
                       f"/alerts/{quote(row.alert.alert_id, safe='')}")


class StaleReview(HTTPException):
    """409 with a link back to the alert as it is now."""

    def __init__(self, detail: str, link: str) -> None:
        super().__init__(409, detail)
        self.link = link


@authenticated
def cameras(request: Request, operator: Operator) -> Response:
    console = _console(request)
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    statuses, checkpoints = read_statuses(console.dynamodb, console.settings.state_table, operator.access)
    rows = [
        camera_row(s, console.store.count_since(s.camera_id, midnight), now,
                   checkpoint_at=checkpoints.get(s.camera_id))
        for s in statuses
    ]
    return render(request, operator, "cameras.html", rows=rows, now=now)


# -- scenes ---------------------------------------------------------------------------------------------


def _scene_camera(request: Request, operator: Operator) -> CameraStatus:
    console = _console(request)
    camera_id = request.path_params["camera_id"]
    status = camera_status(console.dynamodb, console.settings.state_table, camera_id, operator.access)
    if status is None:
        raise HTTPException(404, f"no camera {camera_id} (or not one of your sites)")
    return status


def _render_scene(request: Request, operator: Operator, camera: CameraStatus, view: SceneView, *,
                  status_code: int = 200, revision: int | None = None, text: str | None = None,
                  errors: list[str] | None = None, conflict: bool = False, saved: bool = False) -> Response:
    """The scene page; after a refused save, with the operator's own JSON (`text`) and the revision
    they loaded (`revision`), so a resubmission is checked against what they saw."""
    console = _console(request)
    latest = console.store.latest_with_snapshot(camera.camera_id)
    still = None
    if latest is not None:
        link = media_link(console.s3, latest.alert.snapshot, "snapshot", console.settings.link_expiry_s)
        still = _checked(link, latest.alert.alert_id, "snapshot").url
    return render(
        request, operator, "scene.html", status_code=status_code, camera=camera, view=view,
        revision=view.revision if revision is None else revision, text=view.text if text is None else text,
        errors=errors or [], conflict=conflict, saved=saved, still=still, still_alert=latest.alert if latest else None,
        editable=operator.can_edit_scenes, severities=[s.value for s in Severity],
        site_timezone=console.settings.site_timezones.get(camera.site, ""),
    )


@authenticated
def scene_page(request: Request, operator: Operator) -> Response:
    console = _console(request)
    camera = _scene_camera(request, operator)
    view = read_scene(console.dynamodb, console.settings.state_table, camera.camera_id)
    # "Saved" only when the stored scene is that revision, by this operator (a typed URL proves nothing)
    saved = request.query_params.get("saved") == str(view.revision) and view.updated_by == operator.name
    return _render_scene(request, operator, camera, view, saved=saved)


def _save_scene(request: Request, operator: Operator) -> Response:
    """Validate the posted scene and write it conditional on the revision the page was loaded with.
    A refusal (400 invalid, 409 changed meanwhile) re-renders the page with the operator's JSON and
    writes nothing."""
    console = _console(request)
    form = {k: v[0] for k, v in parse_qs(request.state.body.decode("utf-8", "replace")).items()}
    csrf.check(request, console.settings.secret, operator.subject, form.get(csrf.CSRF_FIELD),
               trusted_proxy=_trusted_proxy(request))
    if not operator.can_edit_scenes:
        raise Forbidden(f"{operator.name} may review alerts but not change a camera's scene: that is a "
                        "supervisor's (operators file role, or a supervisor group)")
    camera = _scene_camera(request, operator)
    try:
        revision = int(form.get("revision", ""))
        if revision < 0:
            raise ValueError(revision)
    except ValueError as exc:
        raise HTTPException(400, "the form does not say which revision it was loaded with; reload the page") from exc
    text = form.get("scene", "")
    table = console.settings.state_table
    try:
        scene = validate(text)
    except SceneInvalid as exc:
        logger.info("scene refused camera=%s by %s: %s", camera.camera_id, operator.name, exc)
        view = read_scene(console.dynamodb, table, camera.camera_id)
        return _render_scene(request, operator, camera, view, status_code=400, revision=revision, text=text,
                             errors=exc.errors)
    try:
        saved = save_scene(console.dynamodb, table, camera.camera_id, scene, revision, operator.name)
    except SceneConflict:
        logger.info("scene conflict camera=%s by %s: loaded revision %d", camera.camera_id, operator.name, revision)
        view = read_scene(console.dynamodb, table, camera.camera_id)
        return _render_scene(request, operator, camera, view, status_code=409, revision=revision, text=text,
                             conflict=True)
    return RedirectResponse(f"/cameras/{quote(camera.camera_id, safe='')}/scene?saved={saved}", status_code=303)


scene_save = authenticated(_save_scene, MAX_SCENE_FORM_BYTES)


async def events(request: Request) -> Response:
    """Server-sent events: new alerts and camera state changes (`console.live`)."""
    console = _console(request)
    operator = await run_in_threadpool(console.auth.operator, request)
    if operator.access.empty:
        raise Forbidden(f"operator {operator.name} is not assigned to any site")
    now = datetime.now(UTC)
    since = live.parse_since(request.headers.get("last-event-id") or request.query_params.get("since"), now)
    shown = console.templates.env.filters["site_time"]

    def describe(row: AlertRow) -> dict[str, Any]:
        when = shown(row.alert.started_at, row.alert.site)  # the list's own <time>, taken apart
        snapshot = row.alert.snapshot
        return {
            "started_shown": when.striptags().rsplit(" ", 1)[0], "tz": when.striptags().rsplit(" ", 1)[1],
            "started_title": utc_iso(row.alert.started_at).replace("T", " ").replace("Z", " UTC"),
            "thumb": _media_url(row.alert.alert_id, "snapshot") if snapshot else None,
        }

    feed = live.LiveFeed(console.store, console.dynamodb, console.settings.state_table, operator.access,
                         watermark=since, stale_after_s=DEFAULT_STALE_AFTER_S, describe=describe)

    async def stream() -> AsyncIterator[str]:
        yield f"retry: 2000\n: {operator.name} watching {operator.access.describe()}\n\n"
        started = last_sent = time.monotonic()
        while time.monotonic() - started < live.MAX_STREAM_S:
            try:
                changes = await run_in_threadpool(feed.poll)
            except (ClientError, BotoCoreError) as exc:
                logger.warning("live stream for %s: poll failed: %s", operator.name, exc)
                changes = []
            watermark = utc_iso(feed.watermark)
            for name, data in changes:
                yield live.sse(name, data, watermark)
                last_sent = time.monotonic()
            if time.monotonic() - last_sent >= live.HEARTBEAT_S:
                yield f"id: {watermark}\n: still here\n\n"
                last_sent = time.monotonic()
            await asyncio.sleep(live.POLL_S)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def stylesheet(request: Request) -> Response:
    return FileResponse(HERE / "static" / "console.css", media_type="text/css")


async def script(request: Request) -> Response:
    return FileResponse(HERE / "static" / "console.js", media_type="text/javascript")


async def scene_script(request: Request) -> Response:
    return FileResponse(HERE / "static" / "scene.js", media_type="text/javascript")


# -- errors --------------------------------------------------------------------------------------------


def _error(request: Request, status: int, title: str, message: str, link: str | None = None) -> Response:
    return render(request, None, "error.html", status_code=status, status=status, title=title, message=message,
                  link=link)


async def _unauthorized(request: Request, exc: Exception) -> Response:
    logger.info("401 %s %s: %s", request.method, request.url.path, exc)
    return _error(request, 401, "Sign-in required", str(exc))


async def _csrf_rejected(request: Request, exc: Exception) -> Response:
    logger.warning("403 %s %s: %s", request.method, request.url.path, exc)
    return _error(request, 403, "Refused", str(exc))


async def _too_many(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TooManyAttempts)
    response = _error(request, 429, "Too many attempts", str(exc))
    response.headers["retry-after"] = str(exc.retry_after_s)
    return response


async def _forbidden(request: Request, exc: Exception) -> Response:
    return _error(request, 403, "Not allowed", str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    titles = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 409: "Conflict",
              413: "Too large", 502: "Storage error"}
    link = exc.link if isinstance(exc, StaleReview) else None
    return _error(request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail), link)


def create_app(settings: ConsoleSettings, *, key_source: KeySource | None = None,
               dynamodb: Any = None, s3: Any = None) -> Starlette:
    """The console application; AWS clients come from the environment (`AWS_ENDPOINT_URL` locally)."""
    dynamodb = dynamodb or boto3.client("dynamodb", region_name=settings.region, config=_BOTO_CONFIG)
    s3 = s3 or boto3.client("s3", region_name=settings.region,
                            config=_BOTO_CONFIG.merge(Config(signature_version="s3v4")))
    app = Starlette(
        routes=[
            Route("/", home),
            Route("/alerts", alert_list),
            Route("/alerts/{alert_id}", alert_page),
            Route("/alerts/bulk-review", bulk_review, methods=["POST"]),
            Route("/alerts/{alert_id}/review", review, methods=["POST"]),
            Route("/alerts/{alert_id}/media/{what}", media),
            Route("/triage/next", next_unreviewed),
            Route("/signout", sign_out, methods=["POST"]),
            Route("/cameras", cameras),
            Route("/cameras/{camera_id}/scene", scene_page, methods=["GET"]),
            Route("/cameras/{camera_id}/scene", scene_save, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/events", events),
            Route("/static/console.css", stylesheet),
            Route("/static/console.js", script),
            Route("/static/scene.js", scene_script),
        ],
        exception_handlers={
            Unauthorized: _unauthorized,
            CsrfRejected: _csrf_rejected,
            Forbidden: _forbidden,
            TooManyAttempts: _too_many,
            HTTPException: _http_error,
        },
    )
    app.add_middleware(SecurityHeaders)
    app.state.console = Console(
        settings=settings,
        auth=Authenticator(settings, key_source),
        throttle=SignInThrottle(),
        store=AlertStore(dynamodb, settings.history_table, settings.audit_table),
        dynamodb=dynamodb,
        s3=s3,
        templates=_templates(settings.site_timezones),
    )
    return app
