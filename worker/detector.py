"""Detector clients: frames in, one score (and regions) per frame out.

`Detector` is the seam; `SageMakerDetector` calls `InvokeEndpoint` on the SageMaker runtime with
the frames as one numpy array (`application/x-npy`, uint8 N x H x W x 3) and validates the answer
against `contracts.inference.InferenceResponse`. Locally, boto3 is pointed at the local inference
server with `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`; the code is the same."""

from __future__ import annotations

import io
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import boto3
import cv2
import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from contracts.inference import CONTENT_TYPE_JSON, CONTENT_TYPE_NPY, MAX_PAYLOAD_BYTES, InferenceResponse
from worker.retry import NO_BOTOCORE_RETRIES, backoff_delay, is_retryable

logger = logging.getLogger(__name__)

INVOKE_TIMEOUTS = Config(connect_timeout=5, read_timeout=30)


class DetectorError(RuntimeError):
    """Inference failed for a batch of frames (after retries, or with an error not worth retrying)."""


class Detector(ABC):
    @abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> InferenceResponse:
        """Scores for `images` (RGB uint8), one result per image in order; `DetectorError` on failure."""


def fit_within(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """`image` scaled down (area interpolation) so that its longer side is at most `max_side`."""
    height, width = image.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def encode_npy(images: Sequence[np.ndarray]) -> bytes:
    """The request body: the frames stacked as one uint8 N x H x W x 3 array in `.npy` format."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(np.stack(images)).astype(np.uint8, copy=False), allow_pickle=False)
    return buffer.getvalue()


class SageMakerDetector(Detector):
    def __init__(
        self,
        endpoint_name: str,
        *,
        camera_id: str,
        client: Any = None,
        max_side: int | None = None,
        max_attempts: int = 4,
        retry_base_s: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.camera_id = camera_id
        self.client = client or boto3.client(
            "sagemaker-runtime", config=NO_BOTOCORE_RETRIES.merge(INVOKE_TIMEOUTS)
        )
        self.max_side = max_side
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.sleep = sleep
        self.retries = 0

    def detect(self, images: Sequence[np.ndarray]) -> InferenceResponse:
        if not images:
            raise DetectorError("no frames to score")
        body = encode_npy([fit_within(image, self.max_side) for image in images])
        if len(body) > MAX_PAYLOAD_BYTES:
            raise DetectorError(
                f"request of {len(body)} bytes for {len(images)} frame(s) is over the endpoint's "
                f"{MAX_PAYLOAD_BYTES} bytes; lower batch_size or inference_max_side"
            )
        payload = self._invoke(body)
        try:
            response = InferenceResponse.model_validate_json(payload)
        except ValidationError as exc:
            raise DetectorError(
                f"endpoint {self.endpoint_name} answered an invalid response: {exc.errors()[0]['msg']}"
            ) from None
        if len(response.results) != len(images):
            raise DetectorError(
                f"endpoint {self.endpoint_name} answered {len(response.results)} results for {len(images)} frames"
            )
        return response

    def _invoke(self, body: bytes) -> bytes:
        for attempt in range(self.max_attempts):
            try:
                answer = self.client.invoke_endpoint(
                    EndpointName=self.endpoint_name,
                    ContentType=CONTENT_TYPE_NPY,
                    Accept=CONTENT_TYPE_JSON,
                    CustomAttributes=f"camera_id={self.camera_id}",
                    Body=body,
                )
                return answer["Body"].read()
            except (ClientError, BotoCoreError) as exc:
                if not is_retryable(exc):
                    raise DetectorError(f"endpoint {self.endpoint_name}: {exc}") from None
                if attempt + 1 == self.max_attempts:
                    raise DetectorError(
                        f"endpoint {self.endpoint_name} failed {self.max_attempts} attempts, last: {exc}"
                    ) from None
                delay_s = backoff_delay(attempt, self.retry_base_s)
                self.retries += 1
                logger.warning(
                    "invoke_endpoint retry camera=%s endpoint=%s attempt=%d delay_s=%.2f: %s",
                    self.camera_id,
                    self.endpoint_name,
                    attempt + 1,
                    delay_s,
                    exc,
                )
                self.sleep(delay_s)
        raise AssertionError("unreachable")  # the loop returns or raises
