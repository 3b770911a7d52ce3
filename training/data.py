"""Training data: a clip manifest (`contracts.manifest.ManifestLine`, JSON Lines) -> decoded RGB frames.

`source-ref` may be an absolute path, a path relative to the manifest's folder, or an
`s3://bucket/key` URI. SageMaker downloads an S3 channel preserving the key structure under the
channel folder, so an S3 URI resolves to the file under the manifest's folder, or one of its
parents, whose relative path is the longest suffix of `key` that exists there.

A clip is a video file (decoded with PyAV, every frame) or a folder of frame images sorted by name.
Frames inside labelled `events` are anomalies and are left out of the "normal" training frames.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import av
import numpy as np
import torch
from PIL import Image
from pydantic import ValidationError

from contracts.manifest import ManifestLine
from training.model import resize_frames

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_CAMERA = "default"
_DECODE_BATCH = 32


class DataError(Exception):
    """Bad training input: the message names what is wrong and which file."""


@dataclass
class Clip:
    """One manifest line, resolved: where its file is and which frames are labelled anomalies."""

    line: ManifestLine
    path: Path

    @property
    def camera_id(self) -> str:
        return self.line.camera_id or DEFAULT_CAMERA

    def is_event(self, index: int) -> bool:
        return any(event.start_frame <= index <= event.end_frame for event in self.line.events)


@dataclass
class LabelledFrames:
    """A camera's frames (uint8 N x 3 x h x w, model size) in manifest order, and which are in events."""

    camera_id: str
    frames: torch.Tensor
    is_event: torch.Tensor  # bool N

    @property
    def normal(self) -> torch.Tensor:
        return self.frames[~self.is_event]


def find_manifests(path: Path) -> list[Path]:
    """PATH is a manifest file, or a folder holding `manifest.jsonl` files (searched recursively)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(path.rglob(MANIFEST_NAME))
        if found:
            return found
        raise DataError(f"no {MANIFEST_NAME} under {path}")
    raise DataError(f"manifest not found: {path}")


def read_manifest(manifest: Path) -> list[Clip]:
    """Parse and resolve every line of one manifest; blank lines are skipped."""
    clips = []
    try:
        text = manifest.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read manifest {manifest}: {exc}") from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = ManifestLine.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise DataError(f"{manifest}:{number}: invalid manifest line: {first['msg']}") from exc
        clips.append(Clip(line=line, path=resolve_source_ref(line.source_ref, manifest.parent)))
    if not clips:
        raise DataError(f"manifest is empty: {manifest}")
    return clips


def resolve_source_ref(source_ref: str, manifest_dir: Path) -> Path:
    """Local path of a manifest's `source-ref` (see the module docstring for the rules)."""
    if source_ref.startswith("s3://"):
        key = PurePosixPath(source_ref.removeprefix("s3://").partition("/")[2])
        if key.parts:
            for root in (manifest_dir, *manifest_dir.parents):
                for start in range(len(key.parts)):
                    candidate = root.joinpath(*key.parts[start:])
                    if candidate.exists():
                        return candidate
        raise DataError(f"source-ref {source_ref} not found under {manifest_dir} or its parents")
    path = Path(source_ref)
    candidate = path if path.is_absolute() else manifest_dir / path
    if not candidate.exists():
        raise DataError(f"source-ref {source_ref} not found (looked for {candidate})")
    return candidate


def iter_clip_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of a clip as uint8 H x W x 3 RGB: a video file, or a folder of images by name."""
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataError(f"clip folder has no images: {path}")
        for image in images:
            try:
                with Image.open(image) as img:
                    yield np.asarray(img.convert("RGB"))
            except OSError as exc:
                raise DataError(f"cannot decode image {image}: {exc}") from exc
        return
    count = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"clip has no video stream: {path}")
            for frame in container.decode(video=0):
                count += 1
                yield frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot decode clip {path}: {exc}") from exc
    if count == 0:
        raise DataError(f"clip has no decodable frames: {path}")


def load_clip(clip: Clip, size: tuple[int, int], max_frames: int | None = None) -> LabelledFrames:
    """The clip's first `max_frames` frames (all by default) resized to the model size, with labels."""
    chunks: list[torch.Tensor] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            resized = resize_frames(torch.from_numpy(np.stack(batch)), size)
            chunks.append(resized.mul(255.0).round().to(torch.uint8))
            batch.clear()

    count = 0
    for frame in iter_clip_frames(clip.path):
        if max_frames is not None and count >= max_frames:
            break
        if batch and batch[0].shape != frame.shape:
            flush()
        batch.append(frame)
        count += 1
        if len(batch) == _DECODE_BATCH:
            flush()
    flush()
    is_event = torch.tensor([clip.is_event(i) for i in range(count)], dtype=torch.bool)
    return LabelledFrames(clip.camera_id, torch.cat(chunks), is_event)


def load_cameras(path: Path, size: tuple[int, int], max_frames: int | None = None) -> list[LabelledFrames]:
    """Every clip under PATH, grouped by camera (manifest order within a camera), with labels.

    `max_frames` keeps only the first frames of each clip (e.g. the first 5 s of a demo video)."""
    by_camera: dict[str, list[LabelledFrames]] = {}
    for manifest in find_manifests(path):
        for clip in read_manifest(manifest):
            loaded = load_clip(clip, size, max_frames)
            logger.info(
                "loaded %s frames (%s in events) of camera %s from %s",
                len(loaded.frames), int(loaded.is_event.sum()), clip.camera_id, clip.path,
            )
            by_camera.setdefault(clip.camera_id, []).append(loaded)
    return [
        LabelledFrames(camera, torch.cat([c.frames for c in clips]), torch.cat([c.is_event for c in clips]))
        for camera, clips in by_camera.items()
    ]
