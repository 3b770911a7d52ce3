"""Privacy masks: the scene's mask polygons blacked out of every picture the worker looks at.

A masked frame's pixels are black before the motion gate compares it, before the detector sends it
(so they are never scored), in tamper statistics and in snapshots; clips are cut from the stream
itself and keep the original footage as evidence. `MaskedPicture` is a `Picture` whose every image
(RGB or greyscale, any size) comes out with the masks applied at that size, so each stage still
makes only the small image it needs. Masks are rasterised with `cv2.fillPoly` at each size asked for,
once: `PrivacyMasker` keeps them until the scene's masks change (a scene read again with the same
masks keeps them too).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import cv2
import numpy as np

from contracts.camera_scene import CameraScene, PrivacyMask
from worker.picture import Image, Picture

logger = logging.getLogger(__name__)

_SHIFT = 4  # fillPoly's fractional bits: vertices at 1/16 pixel
MAX_SIZES = 16  # rasters kept per scene; sizes come and go with resolution changes


def rasterise(masks: list[PrivacyMask], size: tuple[int, int]) -> np.ndarray:
    """(height, width) uint8: 0 inside any mask, 255 elsewhere."""
    height, width = size
    keep = np.full((height, width), 255, np.uint8)
    scale = np.array([width, height], np.float64) * (1 << _SHIFT)
    polygons = [np.round(np.array(mask.polygon, np.float64) * scale).astype(np.int32) for mask in masks]
    cv2.fillPoly(keep, polygons, 0, lineType=cv2.LINE_8, shift=_SHIFT)
    return keep


def black_out(image: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """A copy of `image` (grey or RGB) with the pixels where `keep` is 0 black."""
    return cv2.bitwise_and(image, image, mask=keep)


class PrivacyMasker:
    """The keep-masks of a camera's current scene, per frame size; thread-safe (the reader and the
    analyser both ask for them)."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self._scene: CameraScene | None = None
        self._masks: list[PrivacyMask] = []
        self._rasters: dict[tuple[int, int], np.ndarray] = {}
        self._lock = threading.Lock()

    def keep(self, scene: CameraScene, size: tuple[int, int]) -> np.ndarray | None:
        """The keep-mask of `scene` at (height, width) `size`, or None when it masks nothing."""
        if not scene.privacy_masks:
            return None
        with self._lock:
            if scene is not self._scene:
                if scene.privacy_masks != self._masks:
                    self._rasters = {}
                    self._masks = list(scene.privacy_masks)
                    logger.info(
                        "privacy masks camera=%s: %s",
                        self.camera_id,
                        ", ".join(mask.name for mask in self._masks) or "none",
                    )
                self._scene = scene
            raster = self._rasters.get(size)
            if raster is None:
                if len(self._rasters) >= MAX_SIZES:
                    self._rasters = {}
                raster = self._rasters[size] = rasterise(self._masks, size)
            return raster

    def masked(self, image: Image, scene: CameraScene) -> Image:
        """`image` with the scene's masks applied (itself when there are none): a decoded picture
        becomes a `MaskedPicture`, an RGB array (tests, other sources) a masked copy."""
        if not scene.privacy_masks:
            return image
        if isinstance(image, Picture):
            return MaskedPicture(image, lambda size: self.keep(scene, size))
        return black_out(image, self.keep(scene, image.shape[:2]))  # type: ignore[arg-type]


class MaskedPicture(Picture):
    """A decoded picture whose images come out with the privacy masks black."""

    __slots__ = ("_keep",)

    def __init__(self, picture: Picture, keep: Callable[[tuple[int, int]], np.ndarray | None]) -> None:
        super().__init__(picture.frame)
        self._keep = keep

    def __repr__(self) -> str:
        return f"Masked{super().__repr__()}"

    def _masked(self, image: np.ndarray) -> np.ndarray:
        keep = self._keep(image.shape[:2])
        return image if keep is None else black_out(image, keep)

    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = self._masked(self._scaled(self.shape[:2], "rgb24"))
        return self._rgb

    def rgb_at(self, size: tuple[int, int]) -> np.ndarray:
        if size == self.shape[:2]:
            return self.rgb()
        return self._masked(self._scaled(size, "rgb24"))

    def grey_at(self, size: tuple[int, int]) -> np.ndarray:
        return self._masked(super().grey_at(size))
