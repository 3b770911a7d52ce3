"""Environment variable names the worker reads, in one place.

boto3 itself also reads `AWS_ENDPOINT_URL` (the local moto server) and
`AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` (the local inference server); the worker passes no endpoint
URL of its own, so the same code runs on AWS and locally."""

from __future__ import annotations

ENV_ARCHIVE_BUCKET = "VIGIL_ARCHIVE_BUCKET"
"""S3 bucket for alert snapshots (`snapshots/camera=<id>/date=<YYYY-MM-DD>/<alert_id>.jpg`)."""

ENV_ALERT_STREAM = "VIGIL_ALERT_STREAM"
"""Kinesis Data Stream the alerts are put on."""

DEFAULT_ALERT_STREAM = "alerts"
