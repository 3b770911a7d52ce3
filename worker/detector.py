"""Detector clients: frames in, one score (and regions) per frame out.

`Detector` is the seam; `SageMakerDetector` calls `InvokeEndpoint` on the SageMaker runtime with
the frames as one numpy array (`application/x-npy`) and validates the answer against
`contracts.inference.InferenceResponse`. Locally, boto3 is pointed at the local inference server
with `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`; the code is the same.

Temporal models (`contracts.inference`: the artifact declares `temporal_window` T >= 2) score a
window of T consecutive *sampled* frames, oldest first, the last one being scored. The pipeline's
reader calls `observe(image, scored=...)` for every sampled frame in order, the frames the motion
gate holds back included, so the detector keeps the last T - 1 sampled frames of its camera and
pins, for each frame that will be scored, the frames that came before it (the analyser may run
behind the reader). A frame never observed is observed when it is scored. While the history is
shorter than T - 1 (a new camera, a resolution change) the oldest frame it has is repeated, as the
model saw at the start of its training clips. T is `temporal_window` when given, else discovered:
the first request carries one frame; a frame model answers it (with `temporal_window` 1), a
temporal model refuses it with a 400 that names its `temporal_window`. A later 400 naming another T
(the model was replaced) switches to it and retries once.

Layers: `EndpointClient` (one InvokeEndpoint with retries, the answer checked), `TemporalDetector`
(one camera's history, window discovery, payload chunks), `SageMakerDetector` (a camera that calls
the endpoint itself); in fleet mode `worker.batching.CameraDetector` shares the calls instead."""

from __future__ import annotations

import io
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
import cv2
import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from contracts.inference import (
    CAMERA_ATTRIBUTE,
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_NPY,
    MAX_PAYLOAD_BYTES,
    InferenceResponse,
)
from worker.retry import NO_BOTOCORE_RETRIES, backoff_delay, is_retryable

logger = logging.getLogger(__name__)

INVOKE_TIMEOUTS = Config(connect_timeout=5, read_timeout=30)
MAX_TEMPORAL_WINDOW = 16  # frames of history kept before the endpoint's window is known
PENDING_LIMIT = 256  # frames observed for scoring and not yet scored (dropped ones are forgotten)
_WINDOW_IN_ERROR = re.compile(r"temporal_window=(\d+)")


class DetectorError(RuntimeError):
    """Inference failed for a batch of frames (after retries, or with an error not worth retrying)."""


class Detector(ABC):
    @abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> InferenceResponse:
        """Scores for `images` (RGB uint8), one result per image in order; `DetectorError` on failure."""

    def observe(self, image: np.ndarray, scored: bool) -> None:
        """Every sampled frame of the camera, in order, before it is scored (`scored`) or held back by
        the motion gate: the history a temporal model needs. Frame detectors ignore it; a wrapper
        that keeps the real detector as `inner` passes it on."""
        inner = getattr(self, "inner", None)
        if isinstance(inner, Detector):
            inner.observe(image, scored)


@dataclass
class _Pinned:
    image: np.ndarray  # the frame as the pipeline holds it (identity check)
    scaled: np.ndarray  # as sent: scaled to max_side
    before: tuple[np.ndarray, ...]  # the sampled frames before it (scaled), oldest first


def fit_within(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """`image` scaled down (area interpolation) so that its longer side is at most `max_side`."""
    height, width = image.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class WindowMismatch(Exception):
    """The endpoint refused the request because its model scores windows of another size."""

    def __init__(self, window: int) -> None:
        super().__init__(f"temporal_window={window}")
        self.window = window


def _chunks(items: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Consecutive runs of items whose `.npy` body stays under the endpoint's payload limit."""
    chunks: list[list[np.ndarray]] = [[]]
    size = 0
    for item in items:
        if chunks[-1] and size + item.nbytes + 256 > MAX_PAYLOAD_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += item.nbytes
    return chunks


def encode_npy(images: Sequence[np.ndarray]) -> bytes:
    """The request body: the items stacked as one uint8 array in `.npy` format (N x H x W x 3 frames,
    or N x T x H x W x 3 windows)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(np.stack(images)).astype(np.uint8, copy=False), allow_pickle=False)
    return buffer.getvalue()


class EndpointClient:
    """`InvokeEndpoint` with retries, the answer checked against `contracts.inference`: what one
    camera's `SageMakerDetector` and the cross-camera `worker.batching.BatchingDetector` share."""

    def __init__(
        self,
        endpoint_name: str,
        *,
        client: Any = None,
        max_attempts: int = 4,
        retry_base_s: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.client = client or boto3.client(
            "sagemaker-runtime", config=NO_BOTOCORE_RETRIES.merge(INVOKE_TIMEOUTS)
        )
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.sleep = sleep
        self.retries = 0

    def score(self, items: list[np.ndarray], window: int, custom_attributes: str) -> InferenceResponse:
        """One InvokeEndpoint for `items` (frames, or windows of `window` frames), one result each.
        `WindowMismatch` when the endpoint's model scores windows of another size."""
        body = encode_npy(items)
        if len(body) > MAX_PAYLOAD_BYTES:
            raise DetectorError(
                f"request of {len(body)} bytes for {len(items)} item(s) of {window} frame(s) is over the "
                f"endpoint's {MAX_PAYLOAD_BYTES} bytes; lower inference_max_side"
            )
        payload = self._invoke(body, window, custom_attributes)
        try:
            response = InferenceResponse.model_validate_json(payload)
        except ValidationError as exc:
            raise DetectorError(
                f"endpoint {self.endpoint_name} answered an invalid response: {exc.errors()[0]['msg']}"
            ) from None
        if len(response.results) != len(items):
            raise DetectorError(
                f"endpoint {self.endpoint_name} answered {len(response.results)} results for {len(items)} frames"
            )
        if response.temporal_window != window:
            raise DetectorError(
                f"endpoint {self.endpoint_name} scored {len(items)} item(s) of {window} frame(s) as "
                f"temporal_window={response.temporal_window}"
            )
        return response

    def _invoke(self, body: bytes, window: int, custom_attributes: str) -> bytes:
        for attempt in range(self.max_attempts):
            try:
                answer = self.client.invoke_endpoint(
                    EndpointName=self.endpoint_name,
                    ContentType=CONTENT_TYPE_NPY,
                    Accept=CONTENT_TYPE_JSON,
                    CustomAttributes=custom_attributes,
                    Body=body,
                )
                return answer["Body"].read()
            except (ClientError, BotoCoreError) as exc:
                named = _WINDOW_IN_ERROR.search(str(exc))
                if named and int(named.group(1)) != window and not is_retryable(exc):
                    raise WindowMismatch(int(named.group(1))) from None
                if not is_retryable(exc):
                    raise DetectorError(f"endpoint {self.endpoint_name}: {exc}") from None
                if attempt + 1 == self.max_attempts:
                    raise DetectorError(
                        f"endpoint {self.endpoint_name} failed {self.max_attempts} attempts, last: {exc}"
                    ) from None
                delay_s = backoff_delay(attempt, self.retry_base_s)
                self.retries += 1
                logger.warning(
                    "invoke_endpoint retry %s endpoint=%s attempt=%d delay_s=%.2f: %s",
                    custom_attributes,
                    self.endpoint_name,
                    attempt + 1,
                    delay_s,
                    exc,
                )
                self.sleep(delay_s)
        raise AssertionError("unreachable")  # the loop returns or raises


class TemporalDetector(Detector):
    """One camera's frames scored by a model that may want windows: the history (`observe`), the
    window discovery and the payload chunks; a subclass sends each chunk (`_invoke_items`)."""

    def __init__(
        self,
        endpoint_name: str,
        *,
        camera_id: str,
        max_side: int | None = None,
        temporal_window: int | None = None,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.camera_id = camera_id
        self.max_side = max_side
        self.temporal_window = temporal_window  # None until known
        self._lock = threading.Lock()
        self._history: deque[np.ndarray] = deque(maxlen=self._history_len())
        self._pinned: OrderedDict[int, _Pinned] = OrderedDict()

    @abstractmethod
    def _invoke_items(self, items: list[np.ndarray], window: int) -> InferenceResponse:
        """Score one chunk of this camera's items (frames, or windows of `window` frames); may raise
        `DetectorError` or `WindowMismatch`."""

    # -- history (reader thread via observe, analyser thread via detect) -------------------------

    def _history_len(self) -> int:
        return MAX_TEMPORAL_WINDOW - 1 if self.temporal_window is None else self.temporal_window - 1

    def observe(self, image: np.ndarray, scored: bool) -> None:
        with self._lock:
            if self.temporal_window == 1:
                return
            scaled = fit_within(image, self.max_side)
            if self._history and self._history[-1].shape != scaled.shape:
                logger.info(
                    "frame size changed camera=%s %s -> %s: temporal history restarts",
                    self.camera_id, self._history[-1].shape[:2], scaled.shape[:2],
                )
                self._history.clear()
            if scored:
                self._pinned[id(image)] = _Pinned(image, scaled, tuple(self._history))
                while len(self._pinned) > PENDING_LIMIT:
                    self._pinned.popitem(last=False)
            if self._history.maxlen:
                self._history.append(scaled)

    def _window(self, image: np.ndarray, size: int) -> list[np.ndarray]:
        """The `size` frames ending with `image` (scaled), oldest first, padded with the oldest."""
        with self._lock:
            pinned = self._pinned.get(id(image))
        if pinned is None or pinned.image is not image:
            self.observe(image, scored=True)
            with self._lock:
                pinned = self._pinned[id(image)]
        frames = [*pinned.before[len(pinned.before) - (size - 1) :], pinned.scaled] if size > 1 else [pinned.scaled]
        return [frames[0]] * (size - len(frames)) + frames

    def _set_window(self, size: int) -> None:
        with self._lock:
            if size != self.temporal_window:
                logger.info("temporal_window camera=%s endpoint=%s: %s", self.camera_id, self.endpoint_name, size)
            self.temporal_window = size
            self._history = deque(self._history, maxlen=self._history_len())
            if size == 1:
                self._pinned.clear()

    # -- scoring ---------------------------------------------------------------------------------

    def detect(self, images: Sequence[np.ndarray]) -> InferenceResponse:
        if not images:
            raise DetectorError("no frames to score")
        if self.temporal_window is None:  # discover it with one frame, then score the rest
            first = self._discover(images[0])
            if len(images) == 1:
                return first
            rest = self.detect(images[1:])
            return rest.model_copy(update={"results": [*first.results, *rest.results]})
        try:
            return self._score(images, self.temporal_window)
        except WindowMismatch as mismatch:  # the model was replaced by one with another window
            self._set_window(mismatch.window)
            return self._score(images, mismatch.window)

    def _discover(self, image: np.ndarray) -> InferenceResponse:
        try:
            response = self._score([image], 1)
        except WindowMismatch as mismatch:
            self._set_window(mismatch.window)
            return self._score([image], mismatch.window)
        self._set_window(response.temporal_window)
        return response

    def _score(self, images: Sequence[np.ndarray], window: int) -> InferenceResponse:
        """One InvokeEndpoint per chunk of items that fits the endpoint's payload limit."""
        if window == 1:
            items = [self._window(image, 1)[0] if self.temporal_window != 1 else fit_within(image, self.max_side)
                     for image in images]
        else:
            items = [np.stack(self._window(image, window)) for image in images]
        responses = [self._invoke_items(chunk, window) for chunk in _chunks(items)]
        with self._lock:  # scored: forget what was pinned for them
            for image in images:
                pinned = self._pinned.get(id(image))
                if pinned is not None and pinned.image is image:
                    del self._pinned[id(image)]
        results = [result for response in responses for result in response.results]
        return responses[-1].model_copy(update={"results": results})


class SageMakerDetector(TemporalDetector):
    """A camera's own InvokeEndpoint calls (one camera per process, or batching off)."""

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
        temporal_window: int | None = None,
    ) -> None:
        super().__init__(endpoint_name, camera_id=camera_id, max_side=max_side, temporal_window=temporal_window)
        self.endpoint = EndpointClient(
            endpoint_name, client=client, max_attempts=max_attempts, retry_base_s=retry_base_s, sleep=sleep
        )

    @property
    def retries(self) -> int:
        return self.endpoint.retries

    def _invoke_items(self, items: list[np.ndarray], window: int) -> InferenceResponse:
        return self.endpoint.score(items, window, f"{CAMERA_ATTRIBUTE}={self.camera_id}")
