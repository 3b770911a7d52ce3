"""Snapshots: a JPEG of the alerting frame in S3, linked from the alert record.

Key: `snapshots/camera=<id>/date=<YYYY-MM-DD>/<alert_id>.jpg` (the date of the frame's capture,
UTC). A snapshot that cannot be written never holds up or loses the alert: `write` logs the error
and returns None, and the alert goes out with `snapshot` null."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

import boto3
import cv2
import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from contracts.alert import AlertRecord, S3Object

logger = logging.getLogger(__name__)

JPEG_QUALITY = 85


class SnapshotError(RuntimeError):
    """The frame could not be encoded as JPEG."""


def snapshot_key(alert: AlertRecord) -> str:
    date = alert.frame_at.astimezone(UTC).strftime("%Y-%m-%d")
    return f"snapshots/camera={alert.camera_id}/date={date}/{alert.alert_id}.jpg"


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of an RGB uint8 image."""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise SnapshotError(f"JPEG encoding failed for an image of shape {image.shape}")
    return data.tobytes()


class SnapshotWriter:
    def __init__(self, bucket: str, *, client: Any = None, quality: int = JPEG_QUALITY) -> None:
        self.bucket = bucket
        self.client = client or boto3.client("s3")
        self.quality = quality
        self.failed = 0

    def write(self, alert: AlertRecord, image: np.ndarray) -> S3Object | None:
        """Put the JPEG of `image` for `alert`; where it went, or None (logged) if it could not."""
        key = snapshot_key(alert)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=encode_jpeg(image, self.quality),
                ContentType="image/jpeg",
                Metadata={"camera-id": alert.camera_id, "alert-id": alert.alert_id},
            )
        except (ClientError, BotoCoreError, SnapshotError, cv2.error) as exc:
            self.failed += 1
            logger.error(
                "snapshot not written camera=%s alert_id=%s s3://%s/%s: %s",
                alert.camera_id,
                alert.alert_id,
                self.bucket,
                key,
                exc,
            )
            return None
        return S3Object(bucket=self.bucket, key=key)
