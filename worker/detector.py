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

Frame size: the model resizes every frame to its `input_size` (height, width). Every request asks
for it (`report_input_size=1`), and the endpoint names it in its answer and in the 400 above, so
from the first answer on frames are sent at `inference_size`: the smallest size, aspect ratio
kept, whose sides are at least `INPUT_SIZE_MARGIN` times the model's (room for its antialiased
resize), never upscaled, and never over `max_side` (`inference_max_side`, the only bound while the
size is unknown: the first request, or an endpoint that does not name it). When the size is
learnt or changes, the frames still pinned are rescaled from their decoded image (see
`_set_input_size`). A 1280 x 720 frame goes out as 228 x 128 for a 64 x 96 model (88 KB, a window of
6 frames 525 KB, instead of 1.55 MB per frame at 960 x 540). Frames come in as `worker.picture.Image`s:
a decoded `Picture` is scaled and converted to RGB in one pass (swscale), never through a
full-resolution RGB copy. Only what is sent shrinks: the pipeline keeps the decoded frame for
snapshots and clips, and regions come back in 0..1 coordinates of the frame. An item that alone is
over `MAX_PAYLOAD_BYTES` is a `DetectorError` that names its sizes (it can never be sent).

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
import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from contracts.inference import (
    CAMERA_ATTRIBUTE,
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_NPY,
    CUSTOM_ATTRIBUTES_SEPARATOR,
    INPUT_SIZE_ATTRIBUTE,
    MAX_PAYLOAD_BYTES,
    InferenceResponse,
)
from contracts.retry import NO_BOTOCORE_RETRIES, backoff_delay, is_retryable
from worker.picture import Image, rgb_at

logger = logging.getLogger(__name__)

INVOKE_TIMEOUTS = Config(connect_timeout=5, read_timeout=30)
MAX_TEMPORAL_WINDOW = 16  # frames of history kept before the endpoint's window is known
PENDING_LIMIT = 256  # frames observed for scoring and not yet scored (dropped ones are forgotten)
_WINDOW_IN_ERROR = re.compile(r"temporal_window=(\d+)")
_INPUT_SIZE_IN_ERROR = re.compile(r"input_size=(\d+)x(\d+)")
INPUT_SIZE_MARGIN = 2  # frames are sent with sides >= this x the model's input_size (antialiasing room)
NPY_HEADER_BYTES = 256  # room for the .npy header on top of the pixels
REPORT_INPUT_SIZE = f"{CUSTOM_ATTRIBUTES_SEPARATOR}{INPUT_SIZE_ATTRIBUTE}=1"
"""Appended to every request's custom attributes: the answer then names the model's `input_size`."""


class DetectorError(RuntimeError):
    """Inference failed for a batch of frames (after retries, or with an error not worth retrying)."""


class Detector(ABC):
    @abstractmethod
    def detect(self, images: Sequence[Image]) -> InferenceResponse:
        """Scores for `images` (RGB uint8 arrays or decoded `Picture`s), one result per image in order;
        `DetectorError` on failure."""

    def observe(self, image: Image, scored: bool) -> None:
        """Every sampled frame of the camera, in order, before it is scored (`scored`) or held back by
        the motion gate: the history a temporal model needs. Frame detectors ignore it; a wrapper
        that keeps the real detector as `inner` passes it on."""
        inner = getattr(self, "inner", None)
        if isinstance(inner, Detector):
            inner.observe(image, scored)


@dataclass
class _Pinned:
    image: Image  # the frame as the pipeline holds it (identity check; rescaled from it)
    scaled: np.ndarray  # as sent: at `inference_size`
    before: tuple[np.ndarray, ...]  # the sampled frames before it (scaled), oldest first


def inference_size(
    height: int, width: int, *, input_size: tuple[int, int] | None = None, max_side: int | None = None
) -> tuple[int, int]:
    """(height, width) a `height` x `width` frame is sent at: the smallest size, aspect ratio kept,
    whose sides are at least `INPUT_SIZE_MARGIN` x the model's `input_size` (height, width), never
    larger than the frame, and with its longer side at most `max_side`; either bound may be unknown."""
    scale = 1.0
    if input_size is not None:
        needed = max(INPUT_SIZE_MARGIN * input_size[0] / height, INPUT_SIZE_MARGIN * input_size[1] / width)
        scale = min(scale, needed)
    if max_side is not None:
        scale = min(scale, max_side / max(height, width))
    if scale >= 1.0:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


class WindowMismatch(Exception):
    """The endpoint refused the request because its model scores windows of another size; the
    refusal may also name the model's `input_size`."""

    def __init__(self, window: int, input_size: tuple[int, int] | None = None) -> None:
        super().__init__(f"temporal_window={window}")
        self.window = window
        self.input_size = input_size


def item_too_large(item: np.ndarray, window: int, input_size: tuple[int, int] | None) -> DetectorError:
    """The error for an item that alone is over the payload limit: its sizes, and what would fit."""
    height, width = item.shape[-3:-1]
    frame_bytes = max(1, (MAX_PAYLOAD_BYTES - NPY_HEADER_BYTES) // (window * 3))
    longest = int((frame_bytes * max(height, width) / min(height, width)) ** 0.5)
    model = f"{input_size[0]}x{input_size[1]}" if input_size is not None else "not known (the endpoint did not name it)"
    return DetectorError(
        f"one item of {window} frame(s) of {width}x{height} is {item.nbytes + NPY_HEADER_BYTES} bytes, over the "
        f"endpoint's {MAX_PAYLOAD_BYTES}-byte payload limit; the model's input_size (HxW) is {model}; frames "
        f"of this shape fit with a longer side of at most {longest} (inference_max_side)"
    )


def _chunks(
    items: list[np.ndarray], window: int = 1, input_size: tuple[int, int] | None = None
) -> list[list[np.ndarray]]:
    """Consecutive runs of items whose `.npy` body stays under the endpoint's payload limit;
    `DetectorError` (`item_too_large`) for an item that can never fit."""
    chunks: list[list[np.ndarray]] = [[]]
    size = 0
    for item in items:
        if item.nbytes + NPY_HEADER_BYTES > MAX_PAYLOAD_BYTES:
            raise item_too_large(item, window, input_size)
        if chunks[-1] and size + item.nbytes + NPY_HEADER_BYTES > MAX_PAYLOAD_BYTES:
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
            height, width = items[0].shape[-3:-1]
            raise DetectorError(
                f"request of {len(body)} bytes for {len(items)} item(s) of {window} frame(s) of {width}x{height} "
                f"is over the endpoint's {MAX_PAYLOAD_BYTES} bytes"
            )
        payload = self._invoke(body, window, custom_attributes + REPORT_INPUT_SIZE)
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
                    size = _INPUT_SIZE_IN_ERROR.search(str(exc))
                    input_size = (int(size.group(1)), int(size.group(2))) if size else None
                    raise WindowMismatch(int(named.group(1)), input_size) from None
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
    window and input size discovery, the frame size sent and the payload chunks; a subclass sends
    each chunk (`_invoke_items`)."""

    def __init__(
        self,
        endpoint_name: str,
        *,
        camera_id: str,
        max_side: int | None = None,
        temporal_window: int | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.camera_id = camera_id
        self.max_side = max_side
        self.temporal_window = temporal_window  # None until known
        self.input_size = input_size  # the model's (height, width); None until the endpoint names it
        self._lock = threading.Lock()
        self._history: deque[np.ndarray] = deque(maxlen=self._history_len())
        self._history_source: tuple[int, int] = (0, 0)  # (height, width) of the newest frame observed
        self._pinned: OrderedDict[int, _Pinned] = OrderedDict()

    @abstractmethod
    def _invoke_items(self, items: list[np.ndarray], window: int) -> InferenceResponse:
        """Score one chunk of this camera's items (frames, or windows of `window` frames); may raise
        `DetectorError` or `WindowMismatch`."""

    # -- history (reader thread via observe, analyser thread via detect) -------------------------

    def _history_len(self) -> int:
        return MAX_TEMPORAL_WINDOW - 1 if self.temporal_window is None else self.temporal_window - 1

    def _send_size(self, height: int, width: int) -> tuple[int, int]:
        return inference_size(height, width, input_size=self.input_size, max_side=self.max_side)

    def scaled(self, image: Image) -> np.ndarray:
        """`image` as it is sent to the endpoint: RGB at `inference_size`."""
        return rgb_at(image, self._send_size(*image.shape[:2]))

    def observe(self, image: Image, scored: bool) -> None:
        with self._lock:
            if self.temporal_window == 1:
                return
            scaled = self.scaled(image)
            self._history_source = (image.shape[0], image.shape[1])
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

    def _window(self, image: Image, size: int) -> list[np.ndarray]:
        """The `size` frames ending with `image` (scaled), oldest first, padded with the oldest."""
        with self._lock:
            pinned = self._pinned.get(id(image))
        if pinned is None or pinned.image is not image:
            self.observe(image, scored=True)
        with self._lock:  # read under the lock: a new input size rescales what is pinned
            pinned = self._pinned[id(image)]
            before, scaled = pinned.before, pinned.scaled
        frames = [*before[max(0, len(before) - (size - 1)) :], scaled] if size > 1 else [scaled]
        return [frames[0]] * (size - len(frames)) + frames

    def _set_window(self, size: int) -> None:
        with self._lock:
            if size != self.temporal_window:
                logger.info("temporal_window camera=%s endpoint=%s: %s", self.camera_id, self.endpoint_name, size)
            self.temporal_window = size
            self._history = deque(self._history, maxlen=self._history_len())
            if size == 1:
                self._pinned.clear()

    def _set_input_size(self, input_size: tuple[int, int] | None) -> None:
        """The model's input size, as the endpoint named it: frames from now on are sent at the size it
        needs. What is held at the old size is rescaled from the decoded frames it came from, never
        from its old scaled copy (two resizes blur differently from one: a window mixing them shows
        the model a change that is not there), so only frames still pinned (their decoded image
        held) carry over: the history and each pinned window keep their newest run of such frames,
        and the rest is dropped, as at a resolution change (windows pad with the oldest frame)."""
        if input_size is None or input_size == self.input_size:
            return
        with self._lock:
            logger.info(
                "input_size camera=%s endpoint=%s: %sx%s (was %s)",
                self.camera_id, self.endpoint_name, input_size[0], input_size[1], self.input_size,
            )
            self.input_size = input_size
            resized = [(pinned, self.scaled(pinned.image)) for pinned in self._pinned.values()]
            rescaled = {id(pinned.scaled): (pinned.scaled, new) for pinned, new in resized}

            def carried(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
                newest: list[np.ndarray] = []
                for frame in reversed(frames):
                    old, new = rescaled.get(id(frame), (None, None))
                    if old is not frame or new is None:
                        break
                    newest.append(new)
                return newest[::-1]

            # frames already sent at the new size (too small to shrink) stay as they are
            if self._history and self._send_size(*self._history_source) != self._history[-1].shape[:2]:
                self._history = deque(carried(self._history), maxlen=self._history.maxlen)
            for pinned, new in resized:
                if new.shape != pinned.scaled.shape:
                    pinned.before = tuple(carried(pinned.before))
                    pinned.scaled = new

    def _learn(self, mismatch: WindowMismatch) -> int:
        """What a refusal taught about the model (window, and input size if named); the new window."""
        self._set_input_size(mismatch.input_size)
        self._set_window(mismatch.window)
        return mismatch.window

    # -- scoring ---------------------------------------------------------------------------------

    def detect(self, images: Sequence[Image]) -> InferenceResponse:
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
            return self._score(images, self._learn(mismatch))

    def _discover(self, image: Image) -> InferenceResponse:
        try:
            response = self._score([image], 1)
        except WindowMismatch as mismatch:
            return self._score([image], self._learn(mismatch))
        self._set_window(response.temporal_window)
        return response

    def _score(self, images: Sequence[Image], window: int) -> InferenceResponse:
        """One InvokeEndpoint per chunk of items that fits the endpoint's payload limit."""
        if window == 1:
            items = [self._window(image, 1)[0] if self.temporal_window != 1 else self.scaled(image) for image in images]
        else:
            items = [np.stack(self._window(image, window)) for image in images]
        responses = []
        for chunk in _chunks(items, window, self.input_size):
            responses.append(self._invoke_items(chunk, window))
            self._set_input_size(responses[-1].input_size)  # the next frames go out at the model's size
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
        input_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(
            endpoint_name, camera_id=camera_id, max_side=max_side, temporal_window=temporal_window, input_size=input_size
        )
        self.endpoint = EndpointClient(
            endpoint_name, client=client, max_attempts=max_attempts, retry_base_s=retry_base_s, sleep=sleep
        )

    @property
    def retries(self) -> int:
        return self.endpoint.retries

    def _invoke_items(self, items: list[np.ndarray], window: int) -> InferenceResponse:
        return self.endpoint.score(items, window, f"{CAMERA_ATTRIBUTE}={self.camera_id}")
