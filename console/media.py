"""The alert's snapshot and clip as links the browser can open: presigned S3 GET URLs, after a
`HeadObject` says the object is there (a clip is written some seconds after its alert); and the
alert's score trace, read from next to its clip for the page's chart."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from contracts.alert import S3Object
from contracts.score_trace import ScoreTrace, score_trace_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaLink:
    url: str | None
    missing: str | None
    """Why there is no URL, in words for the page (None when there is one)."""


def media_link(s3: Any, obj: S3Object | None, what: str, expires_in_s: int) -> MediaLink:
    """A presigned URL of `obj`, or the reason there is none ('no snapshot was taken', ...)."""
    if obj is None:
        reason = "clip not archived yet" if what == "clip" else f"no {what} was recorded with this alert"
        return MediaLink(None, reason)
    try:
        s3.head_object(Bucket=obj.bucket, Key=obj.key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            reason = "clip not archived yet" if what == "clip" else f"{what} not found in s3://{obj.bucket}/{obj.key}"
            return MediaLink(None, reason)
        logger.warning("cannot check s3://%s/%s: %s", obj.bucket, obj.key, exc)
        return MediaLink(None, f"{what} unavailable ({code or 'S3 error'})")
    except BotoCoreError as exc:
        logger.warning("cannot check s3://%s/%s: %s", obj.bucket, obj.key, exc)
        return MediaLink(None, f"{what} unavailable (S3 unreachable)")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": obj.bucket, "Key": obj.key}, ExpiresIn=expires_in_s
    )
    return MediaLink(url, None)


@dataclass(frozen=True)
class TraceLink:
    trace: ScoreTrace | None
    missing: str | None
    """Why there is no trace, in words for the page (None when there is one)."""


def score_trace(s3: Any, clip: S3Object | None) -> TraceLink:
    """The alert's score trace, read from next to its clip (`contracts.score_trace`), or the reason
    there is none (the worker writes it once the post-roll is analysed)."""
    if clip is None:
        return TraceLink(None, "score trace not archived yet")
    key = score_trace_key(clip.key)
    try:
        body = s3.get_object(Bucket=clip.bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            return TraceLink(None, "score trace not archived yet")
        logger.warning("cannot read s3://%s/%s: %s", clip.bucket, key, exc)
        return TraceLink(None, f"score trace unavailable ({code or 'S3 error'})")
    except BotoCoreError as exc:
        logger.warning("cannot read s3://%s/%s: %s", clip.bucket, key, exc)
        return TraceLink(None, "score trace unavailable (S3 unreachable)")
    try:
        return TraceLink(ScoreTrace.model_validate_json(body), None)
    except ValidationError as exc:
        logger.warning("unreadable score trace s3://%s/%s: %s", clip.bucket, key, exc)
        return TraceLink(None, "score trace unreadable (not a schema 1 score trace)")
