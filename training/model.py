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
start) looks like normal footage to it. So the model also measures speed: OpenCV's DIS optical flow
between the last `flow_pairs` consecutive frame pairs of the window, at `motion_scale` x `input_size` (2:
the 128 x 192 the worker sends), its mean magnitude per cell (the map's block at flow resolution, 16 px),
averaged over the pairs. The flow is computed outside the TorchScript module, by `inference.motion`
(config.json's `motion` names it; the endpoint and training run the same code), and passed to the module
as `speed`. Normal speed is learnt per cell from the training clips (`motion_quantile` of the training
windows' cell speeds, the `motion_normal` buffer: people walk on the path, nobody rides the lawn), and the
motion map is the speed in excess of it (0 where slower). Each of the two maps is divided by its held-out
normal frames' `fusion_quantile` of frame maxima (so on normal footage both have the same scale) and the
fused map is their sum; the frame's score is the mean of its `top_blocks` highest cells of the fused map.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from inference.motion import MotionSpec

logger = logging.getLogger(__name__)


@dataclass
class ModelConfig:
    """Hyper-parameters of the model; saved with every checkpoint and in the artifact's config.json."""

    input_size: tuple[int, int] = (
        64,
        96,
    )  # (height, width) frames are resized to; multiples of 8 and of block
    temporal_window: int = (
        4  # frames per prediction, oldest first; the last one is predicted (1: appearance only)
    )
    score_frames: int = 4  # a frame's map is the mean of the maps of this many consecutive predictions
    sample_fps: float = 5.0  # the frames of a window are 1 / sample_fps seconds apart (the worker's rate)
    channels: tuple[int, int, int] = (16, 32, 32)  # widths of the three stride-2 encoder stages
    block: int = 8  # side of the square blocks the error map is averaged over, in model pixels
    top_blocks: int = (
        1  # the score is the mean of this many highest blocks of the fused map (a cyclist fills 1-2)
    )
    motion_scale: int = (
        2  # flow at input_size x this: what the worker sends (>= 2 x input_size), a cyclist's wheels
    )
    flow_preset: str = (
        "medium"  # OpenCV DIS preset (inference.motion): medium is the one that separated bikes from walkers
    )
    flow_pairs: int = (
        2  # the motion map averages the speeds of the last this many frame pairs (0.4 s at 5 fps)
    )
    motion_quantile: float = (
        0.999  # a cell's normal speed: this quantile of its speeds in the training windows
    )
    fusion_quantile: float = 0.99  # each map is divided by this quantile of its held-out normal frame maxima
    motion_floor: float = (
        0.1  # the motion map's scale is at least this many px per sampled frame: slower is codec noise
    )
    motion_weight: float = 1.0  # weight of the standardised motion map in the fused map (0: prediction only)
    prediction_weight: float = 1.0  # weight of the standardised prediction-error map (0: motion only)
    tail_quantile: float = (
        0.9  # threshold: generalized Pareto tail fitted to held-out runs above this quantile
    )
    max_shift: int = 0  # augmentation: random translation of the whole window up to this many pixels
    flip: bool = True  # augmentation: mirror half of the windows left-right (motion both ways is alike)
    brightness: float = 0.1  # augmentation: random gain in [1 - brightness, 1 + brightness]
    holdout_fraction: float = 0.2  # last fraction of each camera's normal windows kept for calibration
    false_alarms_per_hour: float = 1.0  # calibration target per camera (see training.calibration)
    threshold_margin: float = (
        1.25  # region threshold margin; threshold margin when too few peaks for a tail fit
    )
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
        self.motion_spec  # noqa: B018 - validates preset, size and pairs
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

    @property
    def motion_spec(self) -> MotionSpec:
        """The motion cue the artifact's config.json names (computed outside the TorchScript module)."""
        return MotionSpec(
            preset=self.flow_preset,
            size=self.flow_size,
            cell=self.block * self.motion_scale,
            pairs=self.flow_pairs,
        )

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
        self.window = config.input_window
        self.predict_window = config.temporal_window
        self.score_frames = config.score_frames
        self.block = config.block
        self.top_blocks = config.top_blocks
        self.motion_weight = config.motion_weight
        self.prediction_weight = config.prediction_weight
        cells = (config.input_size[0] // config.block, config.input_size[1] // config.block)
        self.register_buffer("motion_normal", torch.zeros(cells))
        self.register_buffer("motion_scale", torch.ones(()))
        self.register_buffer("prediction_scale", torch.ones(()))

    def set_normal_stats(
        self, motion_normal: torch.Tensor, motion_scale: float, prediction_scale: float
    ) -> None:
        self.motion_normal.copy_(motion_normal)
        self.motion_scale.fill_(max(motion_scale, 1e-6))
        self.prediction_scale.fill_(max(prediction_scale, 1e-12))

    @torch.jit.export
    def components(
        self, frames: torch.Tensor, speed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`components_grey` of uint8 RGB frames of any size (N x W x H x W x 3, or N x H x W x 3 when
        W = 1), resized and converted in torch (`resize_frames`, `to_grey`); `Scoring` gives
        `components_grey` OpenCV's conversion (`inference.grey`) instead, which is what serving uses."""
        if self.window == 1:
            frames = frames.unsqueeze(1)
        n, t = frames.shape[0], frames.shape[1]
        x = resize_frames(frames.reshape(n * t, frames.shape[2], frames.shape[3], 3), (self.height, self.width))
        return self.components_grey(to_grey(x).reshape(n, t, self.height, self.width), speed)

    @torch.jit.export
    def components_grey(
        self, grey: torch.Tensor, speed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(motion map, prediction map), each N x h x w, unscaled, of greyscale windows (float 0..1,
        N x W x h x w at `input_size`): the cell speed (`speed`, N x h x w, from `inference.motion`;
        none: no motion map) in excess of `motion_normal` (flow pixels per sampled frame, 0 where
        slower), and the mean block prediction error of the last `score_frames` predictions."""
        n = grey.shape[0]
        k, p = self.score_frames, self.predict_window
        # the K prediction windows of each item, item-major: (n * K) x p frames
        windows = torch.stack([grey[:, j : j + p] for j in range(k)], dim=1).reshape(n * k, p, self.height, self.width)
        inputs, target = split_window(windows)
        errors = block_errors(self.predictor(inputs), target, self.block)
        prediction = errors.reshape(n, k, errors.shape[1], errors.shape[2]).mean(dim=1)
        if speed is None:
            return torch.zeros_like(prediction), prediction
        # slower than normal is not anomalous (nobody on the path right now): only the excess counts, and
        # maps and scores stay >= 0
        return F.relu(speed.to(prediction.dtype) - self.motion_normal), prediction

    @torch.jit.export
    def fuse(self, motion: torch.Tensor, prediction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores, maps) from the two unscaled maps. Each map is standardised by its scale; the map
        (where) is their weighted sum, and the score (how much) the weighted sum of each map's own
        `frame_scores`: the two cues of one object peak in different cells (the flow in the cell holding
        its body, the prediction error at its edges, where it was and where it is), so a sum cell by cell
        would let neither peak reinforce the other."""
        m = motion / self.motion_scale * self.motion_weight
        q = prediction / self.prediction_scale * self.prediction_weight
        return frame_scores(m, self.top_blocks) + frame_scores(q, self.top_blocks), m + q

    @torch.jit.export
    def score_grey(
        self, grey: torch.Tensor, speed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        motion, prediction = self.components_grey(grey, speed)
        return self.fuse(motion, prediction)

    def forward(
        self, frames: torch.Tensor, speed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        motion, prediction = self.components(frames, speed)
        return self.fuse(motion, prediction)
