"""Training data: a clip manifest (`contracts.manifest.ManifestLine`, JSON Lines) -> decoded RGB frames.

`source-ref` may be an absolute path, a path relative to the manifest's folder, or an
`s3://bucket/key` URI. SageMaker downloads an S3 channel preserving the key structure under the
channel folder, so an S3 URI resolves to the file under the manifest's folder, or one of its
parents, whose relative path is the longest suffix of `key` that exists there.

A clip is a video file (decoded with PyAV, every frame, its frame rate from the stream) or a folder
of frame images sorted by name (frame rate: the manifest line's `fps` field, else `--image-fps`).

Labelled `events`: frames inside an event whose label is one of `FALSE_ALARM_LABELS` (an operator
dismissed the alert) are normal footage the model must learn; frames inside any other event are
incidents, left out of the normal frames (and, when present, used to sharpen the model).

Bad clips are `ClipError`s: a clip that does not decode, has no frames, is shorter than the model's
temporal window, or changes frame size part-way. Loaders skip such a clip with a WARNING naming it
and the reason, and fail with `DataError` only when no usable clip is left.
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


DEFAULT_IMAGE_FPS = 10.0
# Event labels that mark an operator-dismissed alert: normal footage, learnt with extra weight.
FALSE_ALARM_LABELS = frozenset({"false_alarm", "false-alarm", "dismissed", "normal"})


class DataError(Exception):
    """Bad training input: the message names what is wrong and which file."""


class ClipError(DataError):
    """One clip cannot be used (undecodable, empty, too short, mixed frame sizes); others may be."""


@dataclass
class Clip:
    """One manifest line, resolved: where its file is and which frames are labelled anomalies."""

    line: ManifestLine
    path: Path

    @property
    def camera_id(self) -> str:
        return self.line.camera_id or DEFAULT_CAMERA

    @property
    def source_ref(self) -> str:
        return self.line.source_ref

    def is_event(self, index: int) -> bool:
        return any(event.start_frame <= index <= event.end_frame for event in self.line.events)

    def is_incident(self, index: int) -> bool:
        """In a labelled event that is not a dismissed false alarm."""
        return any(
            event.start_frame <= index <= event.end_frame and event.label not in FALSE_ALARM_LABELS
            for event in self.line.events
        )

    def is_false_alarm(self, index: int) -> bool:
        """In a labelled event an operator dismissed (and in no incident)."""
        return not self.is_incident(index) and any(
            event.start_frame <= index <= event.end_frame and event.label in FALSE_ALARM_LABELS
            for event in self.line.events
        )

    def declared_fps(self) -> float | None:
        fps = (self.line.model_extra or {}).get("fps")
        return float(fps) if isinstance(fps, int | float) and fps > 0 else None


@dataclass
class ClipFrames:
    """One clip decoded at model size: uint8 N x 3 x h x w frames, its frame rate, per-frame labels."""

    clip: Clip
    frames: torch.Tensor
    fps: float
    is_incident: torch.Tensor  # bool N: in a labelled event (not a dismissed false alarm)
    is_false_alarm: torch.Tensor  # bool N: in an event an operator dismissed

    @property
    def camera_id(self) -> str:
        return self.clip.camera_id

    def stride(self, sample_fps: float) -> int:
        """Frames between the frames of a window, so that they are ~1 / sample_fps s apart."""
        return max(1, round(self.fps / sample_fps))


VIDEO_SUFFIXES = (".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".ts", ".h264", ".mpg", ".mpeg")
GENERATED_MANIFEST_DIR = "manifest"


def _has_manifest(path: Path) -> bool:
    return path.is_dir() and next(path.rglob(MANIFEST_NAME), None) is not None


def manifest_for_videos(path: Path, out_dir: Path, camera_id: str = DEFAULT_CAMERA) -> Path:
    """PATH itself when it is a manifest or a folder holding one; else, when PATH is a video or a
    folder of videos (`VIDEO_SUFFIXES`, searched recursively), write the manifest the archiver would
    have written for them, one normal clip of `camera_id` per video (`source-ref` = its absolute
    path), to `out_dir/manifest.jsonl`, and return that file. The footage folder is left untouched."""
    if path.is_dir():
        if _has_manifest(path):
            return path
        videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise DataError(
                f"no {MANIFEST_NAME} and no video ({', '.join(VIDEO_SUFFIXES)}) under {path}: give a folder of "
                f"videos, one video, or a manifest"
            )
    elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        videos = [path]
    else:
        return path  # a manifest file (or nothing there: find_manifests says so)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST_NAME
    lines = [
        ManifestLine(source_ref=str(video.resolve()), camera_id=camera_id, kind="normal").to_json()
        for video in videos
    ]
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info("wrote %s: %d video(s) of %s as normal clips of camera %s", manifest, len(videos), path, camera_id)
    return manifest


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
    """Parse and resolve every line of one manifest; blank lines are skipped, and so are alert clips
    no operator has reviewed (`kind` alert, no labelled `events`): nobody has said whether they show
    something normal, so they are neither learnt as normal nor as incidents."""
    clips = []
    listed = 0
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
        listed += 1
        if line.kind == "alert" and not line.events:
            logger.info("leaving out alert clip %s of camera %s: not reviewed yet", line.source_ref, line.camera_id)
            continue
        clips.append(Clip(line=line, path=resolve_source_ref(line.source_ref, manifest.parent)))
    if not listed:
        raise DataError(f"manifest is empty: {manifest}")
    return clips


def unique_clips(clips: list[Clip]) -> list[Clip]:
    """One clip per `source-ref`, in first-seen order: the same clip listed by several manifests (a
    demo's training channel and its saved archive, two copies of a bucket) is learnt once, from the
    line that carries labels when one does (the newest such line)."""
    chosen: dict[str, Clip] = {}
    for clip in clips:
        seen = chosen.get(clip.source_ref)
        if seen is None or (clip.line.events and clip.line.events != seen.line.events):
            chosen[clip.source_ref] = clip
    return list(chosen.values())


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


def clip_fps(clip: Clip, image_fps: float) -> float:
    """Frame rate of a clip: the video stream's average rate, or the manifest's `fps`, or `image_fps`."""
    if clip.path.is_dir():
        return clip.declared_fps() or image_fps
    try:
        with av.open(str(clip.path)) as container:
            if container.streams.video and container.streams.video[0].average_rate:
                return float(container.streams.video[0].average_rate)
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise ClipError(f"cannot decode clip {clip.path}: {exc}") from exc
    return clip.declared_fps() or image_fps


def iter_clip_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of a clip as uint8 H x W x 3 RGB: a video file, or a folder of images by name."""
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ClipError(f"clip folder has no images: {path}")
        for image in images:
            try:
                with Image.open(image) as img:
                    yield np.asarray(img.convert("RGB"))
            except OSError as exc:
                raise ClipError(f"cannot decode image {image}: {exc}") from exc
        return
    count = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ClipError(f"clip has no video stream: {path}")
            for frame in container.decode(video=0):
                count += 1
                yield frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise ClipError(f"cannot decode clip {path}: {exc}") from exc
    if count == 0:
        raise ClipError(f"clip has no decodable frames: {path}")


def load_clip(
    clip: Clip, size: tuple[int, int], max_frames: int | None = None, image_fps: float = DEFAULT_IMAGE_FPS
) -> ClipFrames:
    """The clip's first `max_frames` frames (all by default) resized to the model size, with labels.

    A clip whose frame size changes part-way is a `ClipError`: a temporal window across the change
    would compare two different pictures."""
    fps = clip_fps(clip, image_fps)
    chunks: list[torch.Tensor] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            resized = resize_frames(torch.from_numpy(np.stack(batch)), size)
            chunks.append(resized.mul(255.0).round().to(torch.uint8))
            batch.clear()

    count = 0
    first_shape: tuple[int, ...] | None = None
    for frame in iter_clip_frames(clip.path):
        if max_frames is not None and count >= max_frames:
            break
        if first_shape is None:
            first_shape = frame.shape
        elif frame.shape != first_shape:
            raise ClipError(
                f"clip {clip.path} changes frame size at frame {count}: "
                f"{first_shape[1]}x{first_shape[0]} -> {frame.shape[1]}x{frame.shape[0]}"
            )
        batch.append(frame)
        count += 1
        if len(batch) == _DECODE_BATCH:
            flush()
    flush()
    if not chunks:
        raise ClipError(f"clip has no frames: {clip.path}")
    return ClipFrames(
        clip=clip,
        frames=torch.cat(chunks),
        fps=fps,
        is_incident=torch.tensor([clip.is_incident(i) for i in range(count)], dtype=torch.bool),
        is_false_alarm=torch.tensor([clip.is_false_alarm(i) for i in range(count)], dtype=torch.bool),
    )


def load_clips(
    path: Path,
    size: tuple[int, int],
    *,
    min_frames: int = 1,
    sample_fps: float | None = None,
    max_frames: int | None = None,
    image_fps: float = DEFAULT_IMAGE_FPS,
) -> tuple[list[ClipFrames], list[tuple[str, str]]]:
    """Every usable clip under PATH, in manifest order, and the (source-ref, reason) of those skipped.

    A clip is skipped (WARNING) when it is a `ClipError` or spans fewer frames than one temporal
    window: `min_frames` frames `1 / sample_fps` seconds apart. No usable clip at all is a `DataError`."""
    loaded: list[ClipFrames] = []
    skipped: list[tuple[str, str]] = []
    listed = [clip for manifest in find_manifests(path) for clip in read_manifest(manifest)]
    for clip in unique_clips(listed):
        try:
            frames = load_clip(clip, size, max_frames, image_fps)
            stride = frames.stride(sample_fps) if sample_fps else 1
            needed = (min_frames - 1) * stride + 1
            if len(frames.frames) < needed:
                raise ClipError(
                    f"clip {clip.path} has {len(frames.frames)} frames, fewer than the model's temporal "
                    f"window of {min_frames} frames {stride} apart ({needed} frames)"
                )
        except ClipError as exc:
            logger.warning("skipping clip %s: %s", clip.source_ref, exc)
            skipped.append((clip.source_ref, str(exc)))
            continue
        logger.info(
            "loaded %s frames at %.3g fps (%s in incidents, %s in dismissed false alarms) of camera %s from %s",
            len(frames.frames), frames.fps, int(frames.is_incident.sum()), int(frames.is_false_alarm.sum()),
            clip.camera_id, clip.path,
        )
        loaded.append(frames)
    if not loaded:
        reasons = "; ".join(reason for _, reason in skipped[:3]) or "only alert clips no operator has reviewed"
        raise DataError(f"no usable clip in {path}: {reasons}")
    return loaded, skipped
