"""The Kinesis record as the alert Lambda receives it: powertools' parser model with a typed `data`.

`kinesis.data` arrives base64-encoded; the parent model's validator decodes it to bytes and
`Json[AlertRecord]` parses and validates those bytes against the shared contract. A record whose
data is not JSON, carries another `schema_version`, or misses a field fails validation, and the
batch processor reports it as a batch item failure without calling the record handler.
"""

from __future__ import annotations

import logging

from aws_lambda_powertools.utilities.parser.models import (
    KinesisDataStreamRecord,
    KinesisDataStreamRecordPayload,
)
from pydantic import Json

from contracts.alert import AlertRecord

logger = logging.getLogger(__name__)


class AlertKinesisPayload(KinesisDataStreamRecordPayload):
    data: Json[AlertRecord]  # type: ignore[assignment]  # narrower than the parent's bytes | model


class AlertKinesisRecord(KinesisDataStreamRecord):
    kinesis: AlertKinesisPayload
