"""The SageMaker PyTorch serving contract: `model_fn`, `input_fn`, `predict_fn`, `output_fn`.

The artifact is `model.pt` (TorchScript) and `config.json` (model_version, input_size, threshold,
per-camera thresholds, region_threshold, optional temporal_window), as written by `python -m training`.
A frame model (temporal_window 1 or absent) maps uint8 N x H x W x 3 RGB to (scores[N], maps[N, h, w]);
a temporal model (temporal_window T >= 2) maps uint8 N x T x H x W x 3 windows, oldest frame first, to
the scores and maps of each window's last frame. Request and response shapes: `contracts.inference`.

Client errors are `InferenceError`s carrying an HTTP status (415 unsupported content type, 400
undecodable body or wrong shape for the model, 406 unacceptable `Accept`, 413 too large); anything
else is a 500 (the server logs the traceback).

A request may name its camera in SageMaker custom attributes (`X-Amzn-SageMaker-Custom-Attributes:
camera_id=<id>`); the response's `threshold` is then that camera's calibrated threshold, if any. A
request batching several cameras names one per item (`camera_ids=<id>|<id>|...`); each result then
carries its camera's threshold, and its regions are found with it.
With `report_input_size=1` among them the
response names the model's `input_size`, so the client sends frames no larger than the model needs;
a 400 for a layout the model cannot score always names `temporal_window` and `input_size`.

Hardware: torch intra-op threads from `inference.env`; on a GPU the model runs there under autocast
in half precision (`VIGIL_PRECISION`, see `select_precision`); every forward is under
`torch.inference_mode`; `model_fn` runs one warm-up batch so the first request is not slow.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import logging
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError

from contracts.inference import (
    CAMERA_ATTRIBUTE,
    CAMERA_IDS_ATTRIBUTE,
    CAMERA_IDS_SEPARATOR,
    CONTENT_TYPE_JPEG,
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_NPY,
    CONTENT_TYPE_PNG,
    INPUT_SIZE_ATTRIBUTE,
    MAX_FRAME_PIXELS,
    MAX_PAYLOAD_BYTES,
    FrameResult,
    InferenceRequest,
    InferenceResponse,
)
from inference import env
from inference.motion import DisMotion
from inference.regions import find_regions
from inference.scoring import Scoring, motion_for

logger = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
IMAGE_FORMATS = {CONTENT_TYPE_JPEG: ("JPEG",), CONTENT_TYPE_PNG: ("PNG",), CONTENT_TYPE_JSON: ("JPEG", "PNG")}
ACCEPTABLE = ("*/*", "application/*", CONTENT_TYPE_JSON)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class InferenceError(Exception):
    """An error with the HTTP status the endpoint answers with."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(InferenceError):
    status = 400


class UnsupportedMediaType(InferenceError):
    status = 415


class NotAcceptable(InferenceError):
    status = 406


class PayloadTooLarge(InferenceError):
    status = 413


class ModelLoadError(RuntimeError):
    """The model directory has no artifact, or the artifact cannot be read."""


@dataclass
class LoadedModel:
    module: torch.jit.ScriptModule
    model_version: str
    threshold: float | None
    thresholds: dict[str, float]
    region_threshold: float | None
    input_size: tuple[int, int]
    temporal_window: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    motion: DisMotion | None = None  # the artifact's motion cue (config.json `motion`), see `inference.scoring`
    # TorchScript modules are not documented as thread-safe: one forward at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def threshold_for(self, camera_id: str | None) -> float | None:
        if camera_id is not None and camera_id in self.thresholds:
            return self.thresholds[camera_id]
        return self.threshold


@dataclass
class Batch:
    """A decoded request: uint8 RGB pixels, last axis 3, laid out as the content type allows.

    `application/x-npy` (the default): N x H x W x 3 or H x W x 3 for a frame model, N x T x H x W x 3
    or T x H x W x 3 for a temporal one. JSON: always N x k x H x W x 3 (k frames per item). An image:
    1 x H x W x 3. `predict_fn` checks the layout against the model (`model_input`)."""

    frames: np.ndarray
    camera_id: str | None = None
    media_type: str = CONTENT_TYPE_NPY
    camera_ids: list[str] | None = None
    """One camera per item (`camera_ids` custom attribute), when the request batches several cameras."""
    report_input_size: bool = False
    """The request asked for the model's `input_size` in the response (`report_input_size=1`)."""


def select_precision(requested: str, cuda_available: bool) -> tuple[torch.device, torch.dtype]:
    """Where and in which floating-point type the model runs.

    On a GPU: float16 for `auto` (half precision under autocast), else the type asked for. On a CPU:
    always float32 (CPU half precision is slower than float32 for these convolutions); asking for
    a half type there is logged and ignored."""
    if requested not in env.PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(env.PRECISIONS)}; got {requested!r}")
    if not cuda_available:
        if requested not in ("auto", "float32"):
            logger.warning("no GPU: running in float32, not %s", requested)
        return torch.device("cpu"), torch.float32
    return torch.device("cuda"), DTYPES["float16" if requested == "auto" else requested]


def model_fn(model_dir: str | Path) -> LoadedModel:
    """Load `model.pt` and `config.json` from `model_dir` onto the best device, warm up once."""
    model_dir = Path(model_dir)
    for name in (MODEL_FILE, CONFIG_FILE):
        if not (model_dir / name).is_file():
            raise ModelLoadError(f"no {name} in model directory {model_dir}")
    torch.set_num_threads(env.TORCH_THREADS)
    device, dtype = select_precision(env.PRECISION, torch.cuda.is_available())
    try:
        config = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        temporal_window = int(config.get("temporal_window") or 1)
        if temporal_window < 1:
            raise ValueError(f"temporal_window must be >= 1, got {temporal_window}")
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*torch.jit.load.*is deprecated", category=FutureWarning
            )
            module = torch.jit.load(str(model_dir / MODEL_FILE), map_location=device)
        model = LoadedModel(
            module=module.eval(),
            model_version=str(config["model_version"]),
            threshold=_optional_float(config.get("threshold")),
            thresholds={str(k): float(v) for k, v in (config.get("thresholds") or {}).items()},
            region_threshold=_optional_float(config.get("region_threshold")),
            input_size=(int(config["input_size"][0]), int(config["input_size"][1])),
            temporal_window=temporal_window,
            device=device,
            dtype=dtype,
        )
        model.motion = motion_for(config)
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ModelLoadError(f"cannot load the model artifact in {model_dir}: {exc}") from exc
    warm_up = np.zeros((1, temporal_window, *model.input_size, 3), dtype=np.uint8)
    try:
        predict_fn(Batch(warm_up, media_type=CONTENT_TYPE_JSON), model)
    except Exception as exc:
        raise ModelLoadError(f"model in {model_dir} fails on a warm-up frame: {exc}") from exc
    logger.info(
        "loaded model %s from %s (device=%s dtype=%s threads=%s temporal_window=%s)",
        model.model_version,
        model_dir,
        device,
        str(dtype).removeprefix("torch."),
        env.TORCH_THREADS,
        temporal_window,
    )
    return model


def input_fn(body: bytes, content_type: str | None, context: Any = None) -> Batch:
    """Decode a request body into uint8 RGB pixels (see `Batch` and `contracts.inference`).

    `context` is the SageMaker toolkit's request context (anything with `get_request_header(idx, key)`);
    its custom attributes may name the camera."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in IMAGE_FORMATS and media_type != CONTENT_TYPE_NPY:
        raise UnsupportedMediaType(
            f"unsupported content type {content_type!r}; use {CONTENT_TYPE_NPY}, {CONTENT_TYPE_JPEG}, "
            f"{CONTENT_TYPE_PNG} or {CONTENT_TYPE_JSON}"
        )
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"payload of {len(body)} bytes is over the {MAX_PAYLOAD_BYTES}-byte limit")
    if media_type == CONTENT_TYPE_NPY:
        frames = _decode_npy(body)
    elif media_type == CONTENT_TYPE_JSON:
        frames = _decode_json(body)
    else:
        frames = _decode_image(body, IMAGE_FORMATS[media_type], "body")[np.newaxis]
    attributes = custom_attributes(context)
    camera_ids = attributes.get(CAMERA_IDS_ATTRIBUTE)
    return Batch(
        frames=frames,
        camera_id=attributes.get(CAMERA_ATTRIBUTE),
        media_type=media_type,
        camera_ids=camera_ids.split(CAMERA_IDS_SEPARATOR) if camera_ids else None,
        report_input_size=attributes.get(INPUT_SIZE_ATTRIBUTE) == "1",
    )


def model_input(data: Batch, temporal_window: int) -> np.ndarray:
    """The request's pixels in the model's layout: N x H x W x 3 (T = 1) or N x T x H x W x 3 (T >= 2).

    Raises 415 for a single image sent to a temporal model, 400 for a shape that does not fit the
    model, 413 for more items than `VIGIL_MAX_BATCH`."""
    frames, t = data.frames, temporal_window
    kind = "a frame model" if t == 1 else f"a temporal model (temporal_window={t})"
    if data.media_type == CONTENT_TYPE_JSON:
        if frames.shape[1] != t:
            raise BadRequest(f"each item must carry {t} frame(s) for {kind}, got {frames.shape[1]}")
        items = frames[:, 0] if t == 1 else frames
    elif data.media_type in (CONTENT_TYPE_JPEG, CONTENT_TYPE_PNG):
        if t > 1:
            raise UnsupportedMediaType(
                f"{data.media_type} carries one frame but {kind} scores windows of {t} frames; "
                f"send {CONTENT_TYPE_NPY} or {CONTENT_TYPE_JSON}"
            )
        items = frames
    else:
        one, many = (3, 4) if t == 1 else (4, 5)
        if frames.ndim not in (one, many) or (t > 1 and frames.shape[-4] != t):
            layout = "N x H x W x 3 or H x W x 3" if t == 1 else f"N x {t} x H x W x 3 or {t} x H x W x 3"
            raise BadRequest(f"frames for {kind} must be {layout}, got shape {list(frames.shape)}")
        items = frames[np.newaxis] if frames.ndim == one else frames
    if len(items) > env.MAX_BATCH:
        raise PayloadTooLarge(f"batch of {len(items)} items is over the limit of {env.MAX_BATCH}")
    return items


def predict_fn(data: Batch, model: LoadedModel) -> InferenceResponse:
    """Score every item (its last frame) and box where it is unusual."""
    try:
        items = torch.from_numpy(np.ascontiguousarray(model_input(data, model.temporal_window)))
    except BadRequest as exc:  # name what the model takes, so that a client can adapt to it
        height, width = model.input_size
        raise BadRequest(
            f"{exc} (model: temporal_window={model.temporal_window}, input_size={height}x{width})"
        ) from None
    per_item = data.camera_ids is not None
    if per_item and len(data.camera_ids) != len(items):  # before the model runs, not after
        raise BadRequest(
            f"{CAMERA_IDS_ATTRIBUTE} names {len(data.camera_ids)} cameras for {len(items)} items"
        )
    autocast = (
        torch.autocast(device_type=model.device.type, dtype=model.dtype)
        if model.dtype != torch.float32
        else contextlib.nullcontext()
    )
    with torch.inference_mode(), model.lock, autocast:
        scores, maps = Scoring(model.module, model.motion)(items.to(model.device, non_blocking=True))
    scores, maps = scores.float().cpu(), maps.float().cpu()
    if tuple(scores.shape) != (len(items),) or maps.ndim != 3 or len(maps) != len(items):
        raise InferenceError(
            f"the model returned scores {list(scores.shape)} and maps {list(maps.shape)} for {len(items)} items"
        )
    if not bool(torch.isfinite(scores).all()):
        logger.error("model %s produced non-finite scores %s", model.model_version, scores.tolist())
        raise InferenceError("the model produced a non-finite score", status=500)
    threshold = model.threshold_for(data.camera_id)
    cameras = data.camera_ids if per_item else [data.camera_id] * len(items)
    results = []
    for score, error_map, camera_id in zip(scores.tolist(), maps.numpy(), cameras, strict=True):
        item_threshold = model.threshold_for(camera_id)
        regions = []
        if item_threshold is not None and model.region_threshold is not None:
            regions = find_regions(error_map, item_threshold, model.region_threshold)
        results.append(
            FrameResult(score=score, regions=regions, threshold=item_threshold if per_item else None)
        )
    return InferenceResponse(
        model_version=model.model_version,
        threshold=threshold,
        temporal_window=model.temporal_window,
        input_size=model.input_size if data.report_input_size else None,
        results=results,
    )


def output_fn(prediction: InferenceResponse, accept: str | None) -> str:
    """The response as JSON; the only representation offered is `application/json`."""
    if not accepts_json(accept):
        raise NotAcceptable(f"cannot answer in {accept!r}; the response is {CONTENT_TYPE_JSON}")
    return prediction.model_dump_json()


def accepts_json(accept: str | None) -> bool:
    """Whether an `Accept` header (`text/html, application/*;q=0.5`) admits `application/json`."""
    if accept is None or not accept.strip():
        return True
    for media_range in accept.split(","):
        media, *params = (part.strip() for part in media_range.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media.lower() in ACCEPTABLE and quality > 0:
            return True
    return False


def custom_attributes(context: Any) -> dict[str, str]:
    """The request's SageMaker custom attributes (empty without a context or the header)."""
    if context is None or not hasattr(context, "get_request_header"):
        return {}
    header = context.get_request_header(0, CUSTOM_ATTRIBUTES_HEADER) or context.get_request_header(
        0, CUSTOM_ATTRIBUTES_HEADER.lower()
    )
    return parse_custom_attributes(header) if header else {}


def parse_custom_attributes(header: str) -> dict[str, str]:
    """`"camera_id=lobby, trace=1"` -> `{"camera_id": "lobby", "trace": "1"}` (`,` or `;` separated)."""
    attributes = {}
    for part in header.replace(";", ",").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = value.strip()
    return attributes


def _decode_npy(body: bytes) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadRequest(f"body is not a numpy .npy array: {exc}") from exc
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
        raise BadRequest(f"frames must be uint8, got {getattr(array, 'dtype', type(array).__name__)}")
    if array.ndim not in (3, 4, 5) or array.shape[-1] != 3 or 0 in array.shape:
        raise BadRequest(f"frames must be uint8 RGB, [N x [T x]] H x W x 3, got shape {list(array.shape)}")
    _check_pixels(array.shape[-3], array.shape[-2], "a frame")
    return array


def _decode_json(body: bytes) -> np.ndarray:
    try:
        request = InferenceRequest.model_validate_json(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        raise BadRequest(f"body is not an inference request: {where}: {error['msg']}") from None
    if len(request.instances) > env.MAX_BATCH:
        raise PayloadTooLarge(f"batch of {len(request.instances)} items is over the limit of {env.MAX_BATCH}")
    if len({len(item.frames) for item in request.instances}) != 1:
        raise BadRequest("every item must carry the same number of frames")
    frames = []
    for i, item in enumerate(request.instances):
        for j, encoded in enumerate(item.frames):
            where = f"instances.{i}.frames.{j}"
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BadRequest(f"{where} is not base64: {exc}") from None
            frames.append(_decode_image(data, IMAGE_FORMATS[CONTENT_TYPE_JSON], where))
    if len({frame.shape for frame in frames}) != 1:
        raise BadRequest(
            f"every image of a request must have the same size, got {sorted({f.shape[:2] for f in frames})}"
        )
    return np.stack(frames).reshape(
        len(request.instances), len(request.instances[0].frames), *frames[0].shape
    )


def _decode_image(data: bytes, formats: tuple[str, ...], where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data), formats=formats) as image:
            _check_pixels(image.height, image.width, where)
            return np.array(image.convert("RGB"))
    except UnidentifiedImageError:
        raise BadRequest(f"{where} is not a {' or '.join(formats)} image") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadRequest(f"{where} is not a decodable {' or '.join(formats)} image: {exc}") from exc


def _check_pixels(height: int, width: int, what: str) -> None:
    if height * width > MAX_FRAME_PIXELS:
        raise PayloadTooLarge(
            f"{what} of {width} x {height} pixels is over the {MAX_FRAME_PIXELS}-pixel limit"
        )
    if height == 0 or width == 0:
        raise BadRequest(f"{what} of {width} x {height} pixels is empty")


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
