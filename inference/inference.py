"""The SageMaker PyTorch serving contract: `model_fn`, `input_fn`, `predict_fn`, `output_fn`.

The artifact is `model.pt` (TorchScript: uint8 N x H x W x 3 RGB -> (scores[N], error maps[N, h, w]))
and `config.json` (model_version, threshold, per-camera thresholds, region_threshold), as written by
`python -m training`. Client errors are `InferenceError`s carrying an HTTP status (415 unsupported
content type, 400 undecodable body, 413 too large); anything else is a 500.

A request may name its camera in SageMaker custom attributes (`X-Amzn-SageMaker-Custom-Attributes:
camera_id=<id>`); the response's `threshold` is then that camera's calibrated threshold, if any.
"""

from __future__ import annotations

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
from PIL import Image

from contracts.inference import (
    CONTENT_TYPE_JPEG,
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_NPY,
    CONTENT_TYPE_PNG,
    MAX_PAYLOAD_BYTES,
    FrameResult,
    InferenceResponse,
)
from inference import env
from inference.regions import find_regions

logger = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
CAMERA_ATTRIBUTE = "camera_id"


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
    # TorchScript modules are not documented as thread-safe: one forward at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def threshold_for(self, camera_id: str | None) -> float | None:
        if camera_id is not None and camera_id in self.thresholds:
            return self.thresholds[camera_id]
        return self.threshold


@dataclass
class Batch:
    frames: np.ndarray  # uint8 N x H x W x 3, RGB
    camera_id: str | None = None


def model_fn(model_dir: str | Path) -> LoadedModel:
    """Load `model.pt` and `config.json` from `model_dir`, set torch threads, warm up once."""
    model_dir = Path(model_dir)
    for name in (MODEL_FILE, CONFIG_FILE):
        if not (model_dir / name).is_file():
            raise ModelLoadError(f"no {name} in model directory {model_dir}")
    try:
        config = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*is deprecated", category=FutureWarning)
            module = torch.jit.load(str(model_dir / MODEL_FILE), map_location="cpu")
        model = LoadedModel(
            module=module.eval(),
            model_version=str(config["model_version"]),
            threshold=_optional_float(config.get("threshold")),
            thresholds={str(k): float(v) for k, v in (config.get("thresholds") or {}).items()},
            region_threshold=_optional_float(config.get("region_threshold")),
            input_size=(int(config["input_size"][0]), int(config["input_size"][1])),
        )
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelLoadError(f"cannot load the model artifact in {model_dir}: {exc}") from exc
    torch.set_num_threads(env.TORCH_THREADS)
    try:
        predict_fn(Batch(np.zeros((1, *model.input_size, 3), dtype=np.uint8)), model)
    except Exception as exc:
        raise ModelLoadError(f"model in {model_dir} fails on a warm-up frame: {exc}") from exc
    logger.info("loaded model %s from %s (threads=%s)", model.model_version, model_dir, env.TORCH_THREADS)
    return model


def input_fn(body: bytes, content_type: str | None, context: Any = None) -> Batch:
    """Decode a request body into uint8 N x H x W x 3 RGB frames (see `contracts.inference`).

    `context` is the SageMaker toolkit's request context (anything with `get_request_header(idx, key)`);
    its custom attributes may name the camera."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in (CONTENT_TYPE_NPY, CONTENT_TYPE_JPEG, CONTENT_TYPE_PNG):
        raise UnsupportedMediaType(
            f"unsupported content type {content_type!r}; use {CONTENT_TYPE_NPY}, {CONTENT_TYPE_JPEG} or "
            f"{CONTENT_TYPE_PNG}"
        )
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"payload of {len(body)} bytes is over the {MAX_PAYLOAD_BYTES}-byte limit")
    frames = _decode_npy(body) if media_type == CONTENT_TYPE_NPY else _decode_image(body)
    if len(frames) > env.MAX_BATCH:
        raise PayloadTooLarge(f"batch of {len(frames)} frames is over the limit of {env.MAX_BATCH}")
    return Batch(frames=frames, camera_id=camera_from_context(context))


def predict_fn(data: Batch, model: LoadedModel) -> InferenceResponse:
    """Score every frame and box where it is unusual."""
    frames = torch.from_numpy(np.ascontiguousarray(data.frames))
    with torch.inference_mode(), model.lock:
        scores, maps = model.module(frames)
    if not bool(torch.isfinite(scores).all()):
        logger.error("model %s produced non-finite scores %s", model.model_version, scores.tolist())
        raise InferenceError("the model produced a non-finite score", status=500)
    threshold = model.threshold_for(data.camera_id)
    results = []
    for score, error_map in zip(scores.tolist(), maps.numpy(), strict=True):
        regions = []
        if threshold is not None and model.region_threshold is not None:
            regions = find_regions(error_map, threshold, model.region_threshold)
        results.append(FrameResult(score=score, regions=regions))
    return InferenceResponse(model_version=model.model_version, threshold=threshold, results=results)


def output_fn(prediction: InferenceResponse, accept: str | None) -> str:
    """The response as JSON; the only representation offered is `application/json`."""
    media_type = (accept or "").split(";")[0].strip().lower()
    if media_type not in ("", "*/*", "application/*", CONTENT_TYPE_JSON):
        raise NotAcceptable(f"cannot answer in {accept!r}; the response is {CONTENT_TYPE_JSON}")
    return prediction.model_dump_json()


def camera_from_context(context: Any) -> str | None:
    """`camera_id` from the custom attributes header (`camera_id=lobby`, other attributes allowed)."""
    if context is None or not hasattr(context, "get_request_header"):
        return None
    header = context.get_request_header(0, CUSTOM_ATTRIBUTES_HEADER) or context.get_request_header(
        0, CUSTOM_ATTRIBUTES_HEADER.lower()
    )
    return parse_custom_attributes(header).get(CAMERA_ATTRIBUTE) if header else None


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
    if array.ndim not in (3, 4) or array.shape[-1] != 3 or 0 in array.shape:
        raise BadRequest(f"frames must be N x H x W x 3 or H x W x 3 RGB, got shape {list(array.shape)}")
    return array[np.newaxis] if array.ndim == 3 else array


def _decode_image(body: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(body)) as image:
            return np.array(image.convert("RGB"))[np.newaxis]
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BadRequest(f"body is not a decodable image: {exc}") from exc


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
