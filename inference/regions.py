"""Where a frame is unusual: connected blocks of its error map, as normalised boxes.

Hysteresis: blocks above `region_threshold` form connected components (8-connectivity), and a
component is a region only if one of its blocks is above the frame `threshold`, so a normal frame
gives no regions while a person's whole extent is boxed."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from contracts.inference import Region

logger = logging.getLogger(__name__)


def find_regions(error_map: np.ndarray, threshold: float, region_threshold: float) -> list[Region]:
    """`error_map` h x w (blocks); returns boxes in 0..1 image coordinates, highest score first."""
    h, w = error_map.shape
    mask = (error_map > min(region_threshold, threshold)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    regions = []
    for label in range(1, count):
        peak = float(error_map[labels == label].max())
        if peak <= threshold:
            continue
        x, y, bw, bh = (int(v) for v in stats[label, :4])
        regions.append(Region(x=x / w, y=y / h, w=bw / w, h=bh / h, score=peak))
    return sorted(regions, key=lambda region: region.score, reverse=True)
