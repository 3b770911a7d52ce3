"""The alert's snapshot and clip as links the browser can open: presigned S3 GET URLs, after a
`HeadObject` says the object is there (a clip is written some seconds after its alert)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from contracts.alert import S3Object

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
