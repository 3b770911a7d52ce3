"""The model: future-frame prediction from the previous frames of a short window (Liu et al., "Future
Frame Prediction for Anomaly Detection - A New Baseline", CVPR 2018), small enough to train from
scratch on two CPU cores in minutes.

An item is a window of `temporal_window` T greyscale frames sampled `1 / sample_fps` seconds apart
(the worker's rate), oldest first. A small U-Net predicts the last frame from the T - 1 before it.
Trained on normal footage only, it learns how things normally move in this camera's view; a bicycle,
a skateboard, a cart or someone running moves in a way it does not predict, and a new object it has
never seen appears out of nowhere. With T = 1 the same network (without skips) reconstructs the
frame: an appearance-only autoencoder.

Scoring: the squared prediction error averaged over `block` x `block` blocks is the map (where the
frame is unusual). A frame's map is the mean of the maps of the last `score_frames` K predictions (the
frame's own and those of the K - 1 sampled frames before it): something that does not belong stays in
view and keeps being mispredicted, while the error of a single badly predicted frame (a compression
artefact, a sudden shadow) is averaged away. So the scorer takes `input_window` = T + K - 1 frames,
and still needs nothing but the frames it is sent: it stays stateless, as an endpoint must. The
frame's score is the mean of its `top_blocks` highest blocks (the max of a single block is noisier:
one block of compression noise or a leaf).

Motion (issue 14): prediction error alone scores a change from the frames before, so an incident in view
from the first frame (a cyclist already crossing when the recording starts; a live camera has no clip
start) looks like normal footage to it. So the scorer also measures speed: pyramidal Lucas-Kanade flow
(`training.flow`, torch ops) between consecutive frames of the window at `motion_scale` x `input_size`
(1 by default: at 2, what the worker sends, the flow costs 4x the time for no gain we could measure; see
the README), resized with antialiasing from the frames sent, its mean magnitude per
cell (the cell is the map's block at flow resolution), averaged over the last `score_frames` frame pairs
(0.8 s at 5 fps: a person's step is averaged, a cyclist stays fast). Normal speed is learnt per cell from
the training clips (`motion_quantile` of the training windows' cell speeds, the `motion_normal` buffer:
people walk on the path, nobody rides the lawn), and the motion map is the speed in excess of it (0 where
slower). Each of
the two maps is divided by its held-out normal frames' `fusion_quantile` of frame maxima (so on normal
footage both have the same scale) and the fused map is their sum; the frame's score is the mean of its
`top_blocks` highest cells of the fused map.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.flow import cell_speed, high_pass, lucas_kanade

logger = logging.getLogger(__name__)

@dataclass
class ModelConfig:
    """Hyper-parameters of the model; saved with every checkpoint and in the artifact's config.json."""

    input_size: tuple[int, int] = (64, 96)  # (height, width) frames are resized to; multiples of 8 and of block
    temporal_window: int = 4  # frames per prediction, oldest first; the last one is predicted (1: appearance only)
    score_frames: int = 4  # a frame's map is the mean of the maps of this many consecutive predictions
    sample_fps: float = 5.0  # the frames of a window are 1 / sample_fps seconds apart (the worker's rate)
    channels: tuple[int, int, int] = (16, 32, 32)  # widths of the three stride-2 encoder stages
    block: int = 8  # side of the square blocks the error map is averaged over, in model pixels
    top_blocks: int = 1  # the score is the mean of this many highest blocks of the fused map (a cyclist fills 1-2)
    motion_scale: int = 1  # flow at input_size x this (the worker sends >= 2 x input_size; 2 costs 4x the time)
    flow_levels: int = 3  # Lucas-Kanade pyramid levels (a displacement of 2^(levels-1) px is 1 px at the top)
    flow_iterations: int = 3  # warping iterations per pyramid level
    flow_window: int = 7  # side of the Lucas-Kanade neighbourhood, in pixels of each level
    flow_ridge: float = 5e-3  # regulariser of the Lucas-Kanade normal equations: flat, noisy areas get no flow
    flow_high_pass: int = 9  # the local mean over this side is removed before the flow (shadows, exposure); 0: none
    motion_quantile: float = 0.999  # a cell's normal speed: this quantile of its speeds in the training windows
    fusion_quantile: float = 0.99  # each map is divided by this quantile of its held-out normal frame maxima
    motion_floor: float = 0.1  # the motion map's scale is at least this many px per sampled frame: slower is codec noise
    motion_weight: float = 1.0  # weight of the standardised motion map in the fused map (0: prediction only)
    prediction_weight: float = 1.0  # weight of the standardised prediction-error map (0: motion only)
    tail_quantile: float = 0.9  # threshold: generalized Pareto tail fitted to held-out runs above this quantile
    max_shift: int = 0  # augmentation: random translation of the whole window up to this many pixels
    flip: bool = True  # augmentation: mirror half of the windows left-right (motion both ways is alike)
    brightness: float = 0.1  # augmentation: random gain in [1 - brightness, 1 + brightness]
    holdout_fraction: float = 0.2  # last fraction of each camera's normal windows kept for calibration
    false_alarms_per_hour: float = 1.0  # calibration target per camera (see training.calibration)
    threshold_margin: float = 1.25  # region threshold margin; threshold margin when too few peaks for a tail fit
    region_quantile: float = 0.99  # region threshold = this quantile of held-out block scores x margin

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        self.channels = tuple(int(c) for c in self.channels)  # type: ignore[assignment]
        if len(self.channels) != 3:
            raise ValueError(f"channels must list 3 widths, got {self.channels}")
        for side in self.input_size:
            if side <= 0 or side % 8 or side % self.block:
                raise ValueError(
                    f"input_size {self.input_size} must be positive multiples of 8 and of block {self.block}"
                )
        if self.temporal_window < 1:
            raise ValueError(f"temporal_window must be >= 1, got {self.temporal_window}")
        if self.score_frames < 1:
            raise ValueError(f"score_frames must be >= 1, got {self.score_frames}")
        if self.top_blocks < 1:
            raise ValueError(f"top_blocks must be >= 1, got {self.top_blocks}")
        for side in self.flow_size:
            if side % (2 ** (self.flow_levels - 1)):
                raise ValueError(f"flow size {self.flow_size} must be divisible by 2^(flow_levels - 1)")
        if self.flow_window < 1 or self.flow_window % 2 == 0:
            raise ValueError(f"flow_window must be odd, got {self.flow_window}")
        if self.flow_high_pass < 0 or (self.flow_high_pass and self.flow_high_pass % 2 == 0):
            raise ValueError(f"flow_high_pass must be 0 or odd, got {self.flow_high_pass}")
        if self.sample_fps <= 0:
            raise ValueError(f"sample_fps must be > 0, got {self.sample_fps}")

    @property
    def in_channels(self) -> int:
        return max(1, self.temporal_window - 1)  # the frames before the predicted one (or the frame)

    @property
    def flow_size(self) -> tuple[int, int]:
        """(height, width) the frames are resized to for the flow (and loaded at for training)."""
        return (self.input_size[0] * self.motion_scale, self.input_size[1] * self.motion_scale)

    @property
    def input_window(self) -> int:
        """Frames the scorer takes per scored frame (the artifact's `temporal_window`): the window of the
        first of the `score_frames` predictions starts `score_frames - 1` sampled frames earlier."""
        return self.temporal_window + self.score_frames - 1

    def to_dict(self) -> dict:
        return asdict(self)


def _stage(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.LeakyReLU(0.1, inplace=True),
    )


class Predictor(nn.Module):
    """A small U-Net: three stride-2 stages down to 1/8 of the input, nearest-upsampling stages back
    with skip connections from the encoder (prediction needs the detail of where things are). With
    T = 1 (reconstruction) the skips are off: they would let the network copy any frame through."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c1, c2, c3 = config.channels
        self.skips = config.temporal_window > 1
        k = 1 if self.skips else 0
        self.down1 = _stage(config.in_channels, c1, 2)
        self.down2 = _stage(c1, c2, 2)
        self.down3 = _stage(c2, c3, 2)
        self.up2 = _stage(c3 + k * c2, c2, 1)
        self.up1 = _stage(c2 + k * c1, c1, 1)
        self.out = nn.Conv2d(c1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.down1(x)
        e2 = self.down2(e1)
        e3 = self.down3(e2)
        d2 = _up(e3)
        d2 = self.up2(torch.cat([d2, e2], dim=1) if self.skips else d2)
        d1 = _up(d2)
        d1 = self.up1(torch.cat([d1, e1], dim=1) if self.skips else d1)
        return self.out(_up(d1))


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 N x H x W x 3 (RGB) -> float N x 3 x h x w in 0..1, resized with antialiasing."""
    x = frames.permute(0, 3, 1, 2).float().div(255.0)
    if x.shape[2] != size[0] or x.shape[3] != size[1]:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0.0, 1.0)


def to_grey(x: torch.Tensor) -> torch.Tensor:
    """float ... x 3 x h x w RGB -> ... x h x w luma (ITU-R BT.601 weights)."""
    return x.select(-3, 0) * 0.299 + x.select(-3, 1) * 0.587 + x.select(-3, 2) * 0.114


def split_window(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float N x T x h x w greyscale windows (oldest first) -> (inputs N x (T - 1), target N x 1): the
    frames before the last, and the last; with T = 1 the frame is both."""
    target = windows[:, -1:]
    return (windows[:, :-1] if windows.shape[1] > 1 else target), target


def block_errors(prediction: torch.Tensor, target: torch.Tensor, block: int) -> torch.Tensor:
    """Per-block mean squared error, N x (h / block) x (w / block)."""
    return F.avg_pool2d((prediction - target).pow(2), kernel_size=block, stride=block).squeeze(1)


def frame_scores(maps: torch.Tensor, top_blocks: int) -> torch.Tensor:
    """The mean of each map's `top_blocks` highest blocks."""
    flat = maps.flatten(1)
    return torch.topk(flat, min(top_blocks, flat.shape[1]), dim=1).values.mean(dim=1)


class AnomalyScorer(nn.Module):
    """What the artifact holds (TorchScript): uint8 RGB frames of any size -> (scores[N], maps[N, h, w]).

    Input: N x W x H x W x 3 windows (oldest first, the last frame is scored) of W =
    `ModelConfig.input_window` frames when W >= 2, N x H x W x 3 frames when W = 1. Maps are the fused
    motion and prediction maps (module docstring); scores see `frame_scores`. The normal statistics
    (`motion_normal`, the two scales) are buffers set by training (`set_normal_stats`); until then the
    maps are the raw speed and the raw prediction error."""

    def __init__(self, predictor: Predictor, config: ModelConfig) -> None:
        super().__init__()
        self.predictor = predictor
        self.height = config.input_size[0]
        self.width = config.input_size[1]
        self.flow_height = config.flow_size[0]
        self.flow_width = config.flow_size[1]
        self.window = config.input_window
        self.predict_window = config.temporal_window
        self.score_frames = config.score_frames
        self.block = config.block
        self.cell = config.block * config.motion_scale
        self.top_blocks = config.top_blocks
        self.flow_levels = config.flow_levels
        self.flow_iterations = config.flow_iterations
        self.flow_window = config.flow_window
        self.flow_ridge = config.flow_ridge
        self.flow_high_pass = config.flow_high_pass
        self.motion_weight = config.motion_weight
        self.prediction_weight = config.prediction_weight
        cells = (config.input_size[0] // config.block, config.input_size[1] // config.block)
        self.register_buffer("motion_normal", torch.zeros(cells))
        self.register_buffer("motion_scale", torch.ones(()))
        self.register_buffer("prediction_scale", torch.ones(()))

    def set_normal_stats(self, motion_normal: torch.Tensor, motion_scale: float, prediction_scale: float) -> None:
        self.motion_normal.copy_(motion_normal)
        self.motion_scale.fill_(max(motion_scale, 1e-6))
        self.prediction_scale.fill_(max(prediction_scale, 1e-12))

    @torch.jit.export
    def components(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(motion map, prediction map), each N x h x w, unscaled: the cell speed in excess of
        `motion_normal` (flow pixels per sampled frame, 0 where slower), and the mean block prediction error."""
        if self.window == 1:
            frames = frames.unsqueeze(1)
        n, t = frames.shape[0], frames.shape[1]
        x = resize_frames(frames.reshape(n * t, frames.shape[2], frames.shape[3], 3), (self.flow_height, self.flow_width))
        fine = to_grey(x).unsqueeze(1)  # (n * t) x 1 x fh x fw
        grey = F.interpolate(fine, size=(self.height, self.width), mode="bilinear", align_corners=False,
                             antialias=True).reshape(n, t, self.height, self.width)
        k, p = self.score_frames, self.predict_window
        # the K prediction windows of each item, item-major: (n * K) x p frames
        windows = torch.stack([grey[:, j : j + p] for j in range(k)], dim=1).reshape(n * k, p, self.height, self.width)
        inputs, target = split_window(windows)
        errors = block_errors(self.predictor(inputs), target, self.block)
        prediction = errors.reshape(n, k, errors.shape[1], errors.shape[2]).mean(dim=1)
        if t < 2:
            return torch.zeros_like(prediction), prediction
        # the last min(K, t - 1) frame pairs of each item
        pairs = min(k, t - 1)
        fine = fine.reshape(n, t, self.flow_height, self.flow_width)
        first = fine[:, t - 1 - pairs : t - 1].reshape(n * pairs, 1, self.flow_height, self.flow_width)
        second = fine[:, t - pairs : t].reshape(n * pairs, 1, self.flow_height, self.flow_width)
        if self.flow_high_pass > 0:
            flow = lucas_kanade(high_pass(first, self.flow_high_pass), high_pass(second, self.flow_high_pass),
                                self.flow_levels, self.flow_iterations, self.flow_window, self.flow_ridge)
        else:
            flow = lucas_kanade(first, second, self.flow_levels, self.flow_iterations, self.flow_window, self.flow_ridge)
        speed = cell_speed(flow, self.cell).reshape(n, pairs, self.motion_normal.shape[0], self.motion_normal.shape[1])
        # a pair of identical frames is the padding of a window at the start of a stream (the worker and
        # training repeat the oldest frame they have; a camera's consecutive frames always differ by some
        # noise): it says nothing about speed, so the mean is over the pairs of distinct frames only
        moved = (first - second).abs().flatten(1).amax(dim=1).reshape(n, pairs) > 0
        weights = moved.to(speed.dtype)
        speed = (speed * weights.view(n, pairs, 1, 1)).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0).view(n, 1, 1)
        # slower than normal is not anomalous (nobody on the path right now): only the excess counts, and
        # maps and scores stay >= 0
        return F.relu(speed - self.motion_normal), prediction

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        motion, prediction = self.components(frames)
        maps = (motion / self.motion_scale) * self.motion_weight + (prediction / self.prediction_scale) * self.prediction_weight
        return frame_scores(maps, self.top_blocks), maps
