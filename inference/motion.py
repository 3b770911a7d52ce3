"""The motion cue: how fast things move in each cell of the frame, by OpenCV's DIS optical flow.

Why here, and not inside the TorchScript artifact: dense inverse search (Kroeger et al., ECCV 2016,
`cv2.DISOpticalFlow`) is a far better flow than anything we could write in torch ops (a pyramidal
Lucas-Kanade in torch scored AUC 0.91 with prefixes cut on the dev clips, DIS 0.97, with 2 flow fields a frame where it needed 4),
and OpenCV is already in the serving image. So the artifact's `config.json` names the motion cue
(`"motion": {"method": "dis", ...}`, `MotionSpec`) and this module, the one home of that computation,
runs it for the endpoint (`inference.inference.predict_fn`) and for training and evaluation alike
(`training` imports it; `inference` never imports `training`), so the speeds a model was calibrated
on are the speeds it is served.

Per item (a window of frames, oldest first) the flow of each of the last `pairs` consecutive frame
pairs is computed on the greyscale frames resized to `size`, its magnitude averaged over `cell` x
`cell` cells, and the speeds of the pairs averaged. A pair of identical frames is the padding of a
window at the start of a stream (the worker and training repeat the oldest frame they have): it says
nothing about speed and is left out of the mean.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from inference.grey import grey_frame

logger = logging.getLogger(__name__)

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class MotionSpec:
    """What `config.json`'s `motion` holds."""

    method: str = "dis"
    preset: str = "medium"
    size: tuple[int, int] = (128, 192)  # (height, width) the flow is computed at
    cell: int = 16  # side of the square cells speeds are averaged over, in flow pixels
    pairs: int = 2  # the last this many frame pairs of an item are averaged

    def __post_init__(self) -> None:
        if self.method != "dis":
            raise ValueError(f"motion method must be 'dis', got {self.method!r}")
        if self.preset not in PRESETS:
            raise ValueError(f"motion preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        height, width = (int(side) for side in self.size)
        if self.cell < 1 or height % self.cell or width % self.cell:
            raise ValueError(f"motion size {self.size} must be multiples of cell {self.cell}")
        if self.pairs < 1:
            raise ValueError(f"motion pairs must be >= 1, got {self.pairs}")
        object.__setattr__(self, "size", (height, width))

    @classmethod
    def from_config(cls, value: dict) -> MotionSpec:
        return cls(**{**value, "size": tuple(value.get("size", cls.size))})

    def to_dict(self) -> dict:
        return {**asdict(self), "size": list(self.size)}

    @property
    def grid(self) -> tuple[int, int]:
        return (self.size[0] // self.cell, self.size[1] // self.cell)


class DisMotion:
    """Cell speeds of windows of frames (see the module docstring). Items are computed in parallel on
    `threads` threads (OpenCV releases the GIL); each thread keeps its own DIS instance."""

    def __init__(self, spec: MotionSpec, threads: int | None = None) -> None:
        self.spec = spec
        self.threads = max(
            1, threads or int(os.environ.get("VIGIL_MOTION_THREADS", "0")) or (os.cpu_count() or 1)
        )
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="motion")
        # one OpenCV thread per call: the items are spread over our threads already, and OpenCV's own pool
        # on top of them (and of torch's) oversubscribed the cores (2 cores: 380 items/s this way, 250 with
        # OpenCV's pool inside one thread)
        cv2.setNumThreads(1)

    def __call__(self, items: np.ndarray) -> np.ndarray:
        """uint8 N x T x H x W x 3 RGB windows -> float32 N x gh x gw mean cell speeds (flow pixels per
        sampled frame, at `spec.size`). T = 1 gives zeros (no pair)."""
        if items.ndim != 5 or items.shape[-1] != 3:
            raise ValueError(f"windows must be N x T x H x W x 3, got shape {list(items.shape)}")
        if len(items) == 0:
            return np.zeros((0, *self.spec.grid), dtype=np.float32)
        if self.threads == 1 or len(items) == 1:
            return np.stack([self._item(item) for item in items])
        return np.stack(list(self._pool.map(self._item, items)))

    def _item(self, window: np.ndarray) -> np.ndarray:
        spec = self.spec
        pairs = min(spec.pairs, len(window) - 1)
        total = np.zeros(spec.grid, dtype=np.float32)
        if pairs < 1:
            return total
        frames = [grey_frame(frame, spec.size) for frame in window[len(window) - 1 - pairs :]]
        counted = 0
        dis = _dis(spec.preset)
        for first, second in itertools.pairwise(frames):
            if np.array_equal(first, second):
                continue
            flow = dis.calc(first, second, None)
            speed = np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2)
            gh, gw = spec.grid
            total += speed.reshape(gh, spec.cell, gw, spec.cell).mean(axis=(1, 3))
            counted += 1
        return total / max(counted, 1)


_per_thread = threading.local()


def _dis(preset: str) -> cv2.DISOpticalFlow:
    """This thread's DIS instance for `preset` (an instance keeps buffers between calls: not shared)."""
    instances = _per_thread.__dict__.setdefault("dis", {})
    if preset not in instances:
        instances[preset] = cv2.DISOpticalFlow_create(PRESETS[preset])
    return instances[preset]
