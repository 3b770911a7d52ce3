"""Where an anomalous frame's regions are: in a privacy mask (dropped), in a zone, or outside every
zone. Pure logic on normalised coordinates (`contracts.camera_scene`), no I/O.

A region is placed by the bottom centre of its box (where a person or a vehicle touches the
ground): `(x + w / 2, y + h)`. A frame over the threshold whose answer has no regions at
all (an endpoint that does not box) is an anomaly with no place: it counts as outside every zone.
A frame whose regions are all in privacy masks raises nothing: what was unusual is not to be seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.camera_scene import CameraScene, Zone, point_in_polygon
from contracts.inference import Region

EventKey = tuple[str, str | None]
"""(event type, zone name or None): the policy tracks one event per key, so two zones give two alerts."""


def bottom_centre(region: Region) -> tuple[float, float]:
    return region.x + region.w / 2, min(1.0, region.y + region.h)


def in_privacy_mask(region: Region, scene: CameraScene) -> bool:
    x, y = bottom_centre(region)
    return any(point_in_polygon(x, y, mask.polygon) for mask in scene.privacy_masks)


@dataclass
class Placed:
    """The regions of one event key in one frame, and the zone they are in (None: outside)."""

    zone: Zone | None
    regions: list[Region] = field(default_factory=list)


def place_regions(
    scene: CameraScene, regions: list[Region], outside_event_type: str
) -> dict[EventKey, Placed]:
    """The event keys an anomalous frame's regions raise, each with its regions (in the endpoint's
    order). Regions in privacy masks are dropped; regions outside every zone go to
    `(outside_event_type, None)` unless the scene ignores them."""
    if not regions:
        return {} if scene.outside_zones == "ignore" else {(outside_event_type, None): Placed(None)}
    placed: dict[EventKey, Placed] = {}
    for region in regions:
        if in_privacy_mask(region, scene):
            continue
        zone = scene.zone_of(*bottom_centre(region))
        if zone is None and scene.outside_zones == "ignore":
            continue
        key = (zone.event_type, zone.name) if zone is not None else (outside_event_type, None)
        placed.setdefault(key, Placed(zone)).regions.append(region)
    return placed


def visible_regions(scene: CameraScene, regions: list[Region]) -> list[Region]:
    """`regions` without those in privacy masks."""
    if not scene.privacy_masks:
        return regions
    return [region for region in regions if not in_privacy_mask(region, scene)]
