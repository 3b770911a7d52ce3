"""The scene-anomaly model: a small convolutional autoencoder and the scoring wrapper that is exported.

A frame's score is the maximum, over spatial blocks, of the mean per-pixel squared reconstruction
error in that block: something new in a localised part of the scene (a person entering an empty
room) gives a large error in a few blocks, while compression noise averages out inside a block.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)


@dataclass
class ModelConfig:
    """Hyper-parameters of the model; saved with every checkpoint and in the artifact's config.json."""

    input_size: tuple[int, int] = (96, 160)  # (height, width) frames are resized to; multiples of 16
    channels: tuple[int, ...] = (16, 32, 64)  # encoder widths, one stride-2 conv each
    bottleneck: int = 8  # channels of the bottleneck (spatial size input_size / 16)
    block: int = 8  # side of the square blocks the error map is averaged over, in model pixels
    max_shift: int = 3  # augmentation: random translation up to this many model pixels
    brightness: float = 0.1  # augmentation: random gain in [1 - brightness, 1 + brightness]
    holdout_fraction: float = 0.2  # last fraction of each camera's normal frames kept for calibration
    threshold_margin: float = 1.25  # threshold = max held-out score x margin
    region_quantile: float = 0.99  # region threshold = this quantile of held-out block errors x margin

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        self.channels = tuple(int(c) for c in self.channels)
        stride = 2 ** (len(self.channels) + 1)
        for side in self.input_size:
            if side <= 0 or side % stride or side % self.block:
                raise ValueError(
                    f"input_size {self.input_size} must be positive multiples of {stride} and of block "
                    f"{self.block}"
                )

    def to_dict(self) -> dict:
        return asdict(self)


class AutoEncoder(nn.Module):
    """Conv encoder (stride-2 steps) to a narrow bottleneck, mirrored decoder, sigmoid output in 0..1."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        widths = list(config.channels)
        encoder: list[nn.Module] = []
        in_ch = 3
        for width in widths:
            encoder += [nn.Conv2d(in_ch, width, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            in_ch = width
        encoder += [nn.Conv2d(in_ch, config.bottleneck, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
        decoder: list[nn.Module] = []
        in_ch = config.bottleneck
        for width in reversed(widths):
            decoder += [
                nn.Upsample(scale_factor=2.0, mode="nearest"),
                nn.Conv2d(in_ch, width, 3, padding=1),
                nn.ReLU(inplace=True),
            ]
            in_ch = width
        decoder += [nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(in_ch, 3, 3, padding=1)]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.encoder(x)))


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 N x H x W x 3 (RGB) -> float N x 3 x h x w in 0..1, resized with antialiasing."""
    x = frames.permute(0, 3, 1, 2).float().div(255.0)
    if x.shape[2] != size[0] or x.shape[3] != size[1]:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0.0, 1.0)


def error_maps(x: torch.Tensor, reconstruction: torch.Tensor, block: int) -> torch.Tensor:
    """Per-block mean squared error, N x (h / block) x (w / block)."""
    per_pixel = (x - reconstruction).pow(2).mean(dim=1, keepdim=True)
    return F.avg_pool2d(per_pixel, kernel_size=block, stride=block).squeeze(1)


class AnomalyScorer(nn.Module):
    """What the artifact holds: uint8 N x H x W x 3 RGB frames of any size -> (scores[N], maps[N, h, w])."""

    def __init__(self, autoencoder: AutoEncoder, config: ModelConfig) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.height = config.input_size[0]
        self.width = config.input_size[1]
        self.block = config.block

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = resize_frames(frames, (self.height, self.width))
        maps = error_maps(x, self.autoencoder(x), self.block)
        scores = maps.flatten(1).amax(dim=1)
        return scores, maps
