"""Environment variable names the worker reads, in one place.

boto3 itself also reads `AWS_ENDPOINT_URL` (the local moto server) and
`AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` (the local inference server); the worker passes no endpoint
URL of its own, so the same code runs on AWS and locally."""

from __future__ import annotations

from archive.keys import ENV_ARCHIVE_BUCKET

__all__ = ["ENV_ARCHIVE_BUCKET"]  # the archive's bucket (clips, manifests) holds the worker's snapshots too

ENV_ALERT_STREAM = "VIGIL_ALERT_STREAM"
"""Kinesis Data Stream the alerts are put on."""

DEFAULT_ALERT_STREAM = "alerts"

ENV_STATE_TABLE = "VIGIL_STATE_TABLE"
"""DynamoDB table (key `id`, S) for the worker's checkpoints, camera leases and camera status items."""

ENV_ENDPOINT_NAME = "VIGIL_ENDPOINT_NAME"
"""SageMaker endpoint the worker invokes (default of `endpoint_name`; a config file or flag wins)."""

ENV_FRAME_SAMPLE_FPS = "VIGIL_FRAME_SAMPLE_FPS"
"""Frames analysed per second per camera (default of `sample_fps`; a config file or flag wins)."""

ENV_CAMERAS = "VIGIL_CAMERAS"
"""The fleet (`python -m worker --fleet`): JSON `{"<camera_id>": {"site": "...", "stream_name": "..."}}`;
each camera is read from `kvs://<stream_name>` by whichever worker task holds its lease."""

ENV_FLEET_BATCH_ENABLED = "VIGIL_FLEET_BATCH_ENABLED"
"""Fleet mode: whether the task's cameras share InvokeEndpoint calls, `true` / `false` (default of
`fleet_batch.enabled`; a config file's `fleet_batch` or a flag wins, key by key)."""

ENV_FLEET_BATCH_MAX = "VIGIL_FLEET_BATCH_MAX"
"""Fleet mode: frames per shared InvokeEndpoint call, at most, 1-64 (default of `fleet_batch.max_batch`)."""

ENV_FLEET_BATCH_WAIT_MS = "VIGIL_FLEET_BATCH_WAIT_MS"
"""Fleet mode: longest wait of a frame for others to share its call, 0-1000 ms (default of
`fleet_batch.max_wait_ms`)."""
