"""`python -m training`: train the scene-anomaly predictor on a camera's normal clips (SageMaker
script mode), calibrate thresholds on held-out normal windows, export `model.tar.gz`.

Optional supervision (labelled events in the training manifest, see `training.data`): windows of
dismissed false alarms are normal and drawn `FALSE_ALARM_WEIGHT` times as often, so the model learns
them; windows ending in an incident are never learnt as normal, and when there are some, each step
also pushes their reconstruction error above `INCIDENT_MARGIN` x the normal batch's (a hinge, after
"learning not to reconstruct anomalies", Astrid et al., BMVC 2021).

Metrics are printed one per line group as `name=value` (`epoch=3 train_loss=0.0123`,
`holdout_score_max=...`, `threshold=...`, `val_score_max=...`) for SageMaker metric definitions.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from inference.grey import grey_frames
from inference.motion import DisMotion
from inference.scoring import Scoring
from training import env
from training.calibration import HeldOut, calibrate
from training.data import (
    DEFAULT_CAMERA,
    DEFAULT_IMAGE_FPS,
    GENERATED_MANIFEST_DIR,
    ClipFrames,
    DataError,
    load_clips,
    manifest_for_videos,
)
from training.evaluate import evaluate_clips
from training.export import export_artifact
from training.model import AnomalyScorer, ModelConfig, Predictor, block_errors, split_window
from training.windows import window_indices

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
DEFAULTS = ModelConfig()
FALSE_ALARM_WEIGHT = 4  # dismissed false-alarm windows are drawn this many times as often
INCIDENT_MARGIN = 4.0  # incident windows are pushed to this many times the normal batch's error
MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS = 10, 100  # bounds of the epochs --steps asks for (tiny data: fewer steps)
EMA_DECAY = 0.998  # the weights kept are an average over the last ~500 steps: less noisy than any one step's
MOTION_STATS_WINDOWS = 1500  # training windows the per-cell normal speeds are measured on (evenly spread)
PLATEAU_MIN_GAIN = 0.01  # the held-out loss must fall by this fraction of its best to count as improving
PLATEAU_FROM = 0.5  # early stopping is armed once this fraction of the steps has run (the learning rate is
# decaying by then; near the peak rate the held-out loss jumps from epoch to epoch and says little)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training", description="Train Vigil's scene-anomaly model on normal clips."
    )
    parser.add_argument(
        "--train",
        type=Path,
        default=os.environ.get(env.SM_CHANNEL_TRAIN),
        help=f"manifest.jsonl or a folder holding manifests; or a video, or a folder of videos, for which a "
        f"manifest is written to MODEL_DIR/{GENERATED_MANIFEST_DIR}/ (default: ${env.SM_CHANNEL_TRAIN})",
    )
    parser.add_argument(
        "--camera-id",
        default=DEFAULT_CAMERA,
        help=f"camera the videos of a --train without a manifest belong to (default: {DEFAULT_CAMERA})",
    )
    parser.add_argument(
        "--validation",
        type=Path,
        default=os.environ.get(env.SM_CHANNEL_VALIDATION),
        help=f"labelled manifest or folder to report val_* metrics on (default: ${env.SM_CHANNEL_VALIDATION}, "
        "else none)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=os.environ.get(env.SM_MODEL_DIR),
        help=f"where model.tar.gz, model.pt and config.json go (default: ${env.SM_MODEL_DIR})",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="passes over the training windows (default: as many as --steps optimiser steps take)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=4800,
        help=f"optimiser steps when --epochs is not given (default: 4800, within {MIN_AUTO_EPOCHS} to "
        f"{MAX_AUTO_EPOCHS} epochs)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=8,
        help="stop early when the held-out normal windows' prediction loss has not fallen by "
        f"{PLATEAU_MIN_GAIN:.0%}% of its best for this many epochs, checked once {PLATEAU_FROM:.0%}% of the "
        "steps have run; the best epoch's weights are kept (default: 8; 0: never stop early)",
    )
    parser.add_argument(
        "--gradient-loss",
        type=float,
        default=0.0,
        help="weight of the image-gradient term added to the squared prediction error (default: 0)",
    )
    parser.add_argument(
        "--ema-decay",
        type=float,
        default=EMA_DECAY,
        help="also keep an exponential moving average of the weights, with this decay per step (warmed up), "
        "and export it when it predicts the held-out windows better; 0 = the trained weights only "
        f"(default: {EMA_DECAY})",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="windows per optimiser step (default: 32)")
    parser.add_argument(
        "--lr",
        type=float,
        default=3e-3,
        help="peak Adam learning rate; warm-up then cosine decay (default: 0.003)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; runs are deterministic (default: 0)"
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help=f"save/resume checkpoints here; {env.SAGEMAKER_CHECKPOINT_DIR} is used instead when it exists "
        "(default: none, no checkpoints)",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=list(DEFAULTS.input_size),
        help=f"model frame size, multiples of 8 (default: {DEFAULTS.input_size[0]} {DEFAULTS.input_size[1]})",
    )
    parser.add_argument(
        "--temporal-window",
        type=int,
        default=DEFAULTS.temporal_window,
        help=f"frames per prediction (the last is predicted from the others), 1 = single frames "
        f"(default: {DEFAULTS.temporal_window})",
    )
    parser.add_argument(
        "--score-frames",
        type=int,
        default=DEFAULTS.score_frames,
        help="a frame's error map is the mean of this many consecutive predictions' maps; the model then "
        f"takes temporal_window + score_frames - 1 frames (default: {DEFAULTS.score_frames})",
    )
    parser.add_argument(
        "--channels",
        type=int,
        nargs=3,
        metavar=("C1", "C2", "C3"),
        default=list(DEFAULTS.channels),
        help=f"widths of the predictor's three encoder stages (default: {' '.join(map(str, DEFAULTS.channels))})",
    )
    parser.add_argument(
        "--motion-weight",
        type=float,
        default=DEFAULTS.motion_weight,
        help=f"weight of the motion map in the fused score, 0 = prediction error only (default: {DEFAULTS.motion_weight:g})",
    )
    parser.add_argument(
        "--prediction-weight",
        type=float,
        default=DEFAULTS.prediction_weight,
        help="weight of the prediction-error map in the fused score, 0 = motion only "
        f"(default: {DEFAULTS.prediction_weight:g})",
    )
    parser.add_argument(
        "--false-alarms-per-hour",
        type=float,
        default=DEFAULTS.false_alarms_per_hour,
        help=f"calibration target per camera (default: {DEFAULTS.false_alarms_per_hour:g})",
    )
    parser.add_argument(
        "--sample-fps",
        type=float,
        default=DEFAULTS.sample_fps,
        help=f"rate the worker samples frames at; window frames are this far apart (default: {DEFAULTS.sample_fps:g})",
    )
    parser.add_argument(
        "--image-fps",
        type=float,
        default=DEFAULT_IMAGE_FPS,
        help=f"frame rate of image-folder clips whose manifest line has no fps (default: {DEFAULT_IMAGE_FPS:g})",
    )
    parser.add_argument(
        "--max-frames-per-clip",
        type=int,
        default=None,
        help="use only the first N frames of each clip, e.g. 50 for 5 s at 10 fps (default: all frames)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's choice, capped at the CPUs this process may use)",
    )
    parser.add_argument(
        "--model-version",
        default=None,
        help="version recorded in the artifact (default: UTC timestamp + short hash of the weights)",
    )
    return parser


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


@dataclass
class WindowSet:
    """The training data: every clip's frames (uint8 N x 3 x h x w) in one tensor, and windows as rows
    of indices into it: prediction windows (T = `temporal_window` frames) to train on, normal and
    incident, and the held-out normal windows per camera as the scorer takes them (W =
    `input_window` frames; their last T frames are the prediction window of the same frame)."""

    frames: torch.Tensor
    grey: torch.Tensor  # the frames as the model sees them: uint8 N x h x w at input_size (`inference.grey`)
    train: torch.Tensor  # n x T
    holdout: dict[str, torch.Tensor]  # camera -> n x W, in time order
    incidents: torch.Tensor  # n x T
    false_alarm_windows: int
    normal: torch.Tensor  # n x W: the normal windows trained on, as the scorer takes them (motion statistics)
    holdout_hours: dict[str, float]  # camera -> hours of footage its held-out windows span


def build_windows(clips: list[ClipFrames], config: ModelConfig) -> WindowSet:
    """Windows of every clip at its stride; per camera the last `holdout_fraction` of the normal
    windows (at least one) are held out for calibration."""
    frames, offset = [], 0
    normal: dict[str, list[torch.Tensor]] = {}
    seconds: dict[str, list[torch.Tensor]] = {}  # per normal window: 1 / its clip's fps
    weights: dict[str, list[torch.Tensor]] = {}
    incidents = []
    t = config.temporal_window
    for clip in clips:
        idx = window_indices(len(clip.frames), config.input_window, clip.stride(config.sample_fps))
        in_incident = clip.is_incident[idx].any(dim=1)
        frames.append(clip.frames)
        normal.setdefault(clip.camera_id, []).append(idx[~in_incident] + offset)
        seconds.setdefault(clip.camera_id, []).append(
            torch.full((int((~in_incident).sum()),), 1.0 / clip.fps)
        )
        weights.setdefault(clip.camera_id, []).append(clip.is_false_alarm[idx[~in_incident, -1]])
        incidents.append(idx[clip.is_incident[idx[:, -1]], -t:] + offset)
        offset += len(clip.frames)
    train, holdout, false_alarm_windows, full, hours = [], {}, 0, [], {}
    for camera, parts in normal.items():
        windows = torch.cat(parts)
        is_false_alarm = torch.cat(weights[camera])
        if len(windows) < 2:
            raise DataError(f"camera {camera} has {len(windows)} normal window(s): need at least 2")
        n_holdout = min(len(windows) - 1, max(1, round(len(windows) * config.holdout_fraction)))
        keep, fa = windows[:-n_holdout, -t:], is_false_alarm[:-n_holdout]
        false_alarm_windows += int(fa.sum())
        train += [keep, keep[fa].repeat(FALSE_ALARM_WEIGHT - 1, 1)]
        holdout[camera] = windows[-n_holdout:]
        hours[camera] = float(torch.cat(seconds[camera])[-n_holdout:].sum()) / 3600.0
        full.append(windows[:-n_holdout])
    every = torch.cat(frames)
    return WindowSet(
        frames=every,
        grey=torch.from_numpy(grey_frames(every.permute(0, 2, 3, 1).numpy(), config.input_size)),
        train=torch.cat(train),
        holdout=holdout,
        incidents=torch.cat(incidents),
        false_alarm_windows=false_alarm_windows,
        normal=torch.cat(full),
        holdout_hours=hours,
    )


def batch_windows(
    grey: torch.Tensor, config: ModelConfig, generator: torch.Generator | None
) -> torch.Tensor:
    """uint8 B x T x h x w greyscale windows (`WindowSet.grey`, at `input_size`) -> float in 0..1; with a
    generator, augmented (one brightness gain, mirror and translation per window)."""
    grey = grey.float().div(255.0)
    b, _, h, w = grey.shape
    if generator is not None:
        gain = 1.0 + (torch.rand(b, 1, 1, 1, generator=generator) * 2.0 - 1.0) * config.brightness
        grey = (grey * gain).clamp(0.0, 1.0)
    if generator is not None and config.flip:
        mirror = torch.rand(b, generator=generator) < 0.5
        grey = torch.where(mirror.view(b, 1, 1, 1), grey.flip(-1), grey)
    s = config.max_shift if generator is not None else 0
    if s:
        padded = F.pad(grey, (s, s, s, s), mode="replicate")
        offsets = torch.randint(0, 2 * s + 1, (b, 2), generator=generator).tolist()
        grey = torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])
    return grey


def checkpoint_dir(args: argparse.Namespace) -> Path | None:
    sagemaker_dir = Path(env.SAGEMAKER_CHECKPOINT_DIR)
    return sagemaker_dir if sagemaker_dir.is_dir() else args.checkpoint_dir


def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(path)


def resolve_epochs(args: argparse.Namespace, n_windows: int) -> int:
    if args.epochs is not None:
        return args.epochs
    per_epoch = math.ceil(n_windows / args.batch_size)
    return min(MAX_AUTO_EPOCHS, max(MIN_AUTO_EPOCHS, math.ceil(args.steps / per_epoch)))


def main(args: argparse.Namespace) -> dict:
    """Train, calibrate, export; returns the artifact's config.json content."""
    for name in ("train", "model_dir"):
        if getattr(args, name) is None:
            raise DataError(
                f"--{name.replace('_', '-')} is required (or set its SageMaker environment variable)"
            )
    if (args.epochs is not None and args.epochs < 1) or args.steps < 1 or args.batch_size < 1 or args.lr <= 0:
        raise DataError("--epochs, --steps and --batch-size must be >= 1 and --lr > 0")
    if args.patience < 0:
        raise DataError("--patience must be >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.monotonic()
    generator = seed_everything(args.seed)
    use_gpu = torch.cuda.is_available() and os.environ.get(env.SM_NUM_GPUS, "1") != "0"
    device = torch.device("cuda" if use_gpu else "cpu")

    ckpt_dir = checkpoint_dir(args)
    ckpt_path = ckpt_dir / CHECKPOINT_FILE if ckpt_dir else None
    resumed = torch.load(ckpt_path, weights_only=False) if ckpt_path and ckpt_path.exists() else None
    try:
        config = (
            ModelConfig(**resumed["config"])
            if resumed
            else ModelConfig(
                input_size=tuple(args.input_size),
                temporal_window=args.temporal_window,
                sample_fps=args.sample_fps,
                score_frames=args.score_frames,
                channels=tuple(args.channels),
                motion_weight=args.motion_weight,
                prediction_weight=args.prediction_weight,
                false_alarms_per_hour=args.false_alarms_per_hour,
            )
        )
    except (ValueError, TypeError) as exc:
        raise DataError(str(exc)) from exc

    train = manifest_for_videos(args.train, args.model_dir / GENERATED_MANIFEST_DIR, args.camera_id)
    clips, skipped = load_clips(
        train,
        config.flow_size,
        min_frames=config.input_window,
        sample_fps=config.sample_fps,
        max_frames=args.max_frames_per_clip,
        image_fps=args.image_fps,
    )
    data = build_windows(clips, config)
    print(
        f"train_windows={len(data.train)} holdout_windows={sum(len(h) for h in data.holdout.values())} "
        f"incident_windows={len(data.incidents)} false_alarm_windows={data.false_alarm_windows} "
        f"clips={len(clips)} skipped_clips={len(skipped)}"
    )

    predictor = Predictor(config).to(device)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=args.lr)
    # an exponential moving average of the trained weights; each epoch, whichever of the two predicts the
    # held-out normal windows better is the candidate that early stopping keeps
    ema = (
        AveragedModel(predictor, avg_fn=WeightAverage(args.ema_decay), use_buffers=True)
        if args.ema_decay
        else None
    )
    candidates = [predictor] if ema is None else [predictor, ema.module]
    epochs = resolve_epochs(args, len(data.train))
    steps_per_epoch = math.ceil(len(data.train) / args.batch_size)
    total_steps = epochs * steps_per_epoch
    start_epoch = 0
    plateau = Plateau(args.patience)
    if resumed:
        predictor.load_state_dict(resumed["model"])
        if ema is not None and "ema" in resumed:  # a checkpoint from before the average, or --ema-decay 0
            ema.load_state_dict(resumed["ema"])
        optimizer.load_state_dict(resumed["optimizer"])
        generator.set_state(resumed["generator"])
        start_epoch = resumed["epoch"] + 1
        plateau.__dict__.update(resumed.get("plateau", {}))
        logger.info("resumed from %s at epoch %s", ckpt_path, start_epoch)

    holdout = torch.cat(list(data.holdout.values()))[:, -config.temporal_window :]  # prediction windows
    progress = tqdm(range(start_epoch, epochs), desc="training", disable=not sys.stderr.isatty())
    train_loss = holdout_loss = float("nan")
    epochs_run = start_epoch
    for epoch in progress:
        schedule = LearningRate(args.lr, epoch * steps_per_epoch, total_steps)
        train_loss = train_epoch(
            predictor,
            optimizer,
            schedule,
            data,
            config,
            args.batch_size,
            generator,
            device,
            args.gradient_loss,
            ema,
        )
        holdout_loss, best = min(
            (
                (prediction_loss(m, data.grey, holdout, config, args.batch_size, device), m)
                for m in candidates
            ),
            key=lambda scored: scored[0],
        )
        stop = plateau.update(epoch, holdout_loss, best) and (epoch + 1) >= PLATEAU_FROM * epochs
        epochs_run = epoch + 1
        print(f"epoch={epoch} train_loss={train_loss:.6f} holdout_loss={holdout_loss:.6f}")
        if ckpt_path:
            save_checkpoint(
                ckpt_path,
                {
                    "model": predictor.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    **({"ema": ema.state_dict()} if ema is not None else {}),
                    "epoch": epoch,
                    "args": vars(args),
                    "plateau": plateau.__dict__,
                    "config": config.to_dict(),
                    "generator": generator.get_state(),
                },
            )
        if stop:
            logger.info(
                "held-out loss has not improved for %s epochs: stopping at epoch %s", args.patience, epoch
            )
            break
    if plateau.best_state is not None:
        predictor.load_state_dict(plateau.best_state)
        holdout_loss = plateau.best_loss

    scorer = AnomalyScorer(predictor.cpu().eval(), config).eval()
    scoring = Scoring(scorer, DisMotion(config.motion_spec))
    fit_normal_stats(scoring, data, config)
    train_seconds = time.monotonic() - started
    holdout = {}
    for camera, windows in data.holdout.items():
        scores, maps = score_windows(scoring, data.frames, windows, config.input_window)
        holdout[camera] = HeldOut(scores=scores, maps=maps, hours=data.holdout_hours[camera])
    calibration = calibrate(holdout, config)
    metrics: dict[str, float | None] = {
        "train_loss": train_loss,
        "holdout_loss": holdout_loss,
        "best_epoch": plateau.best_epoch,
        "holdout_score_max": calibration.holdout_score_max,
        "threshold": calibration.threshold,
        "region_threshold": calibration.region_threshold,
        "false_alarms_per_hour_predicted": max(calibration.predicted_false_alarms_per_hour.values()),
        "motion_scale": float(scorer.motion_scale),
        "prediction_scale": float(scorer.prediction_scale),
    }
    if args.validation is not None:
        val_clips, _ = load_clips(
            args.validation,
            config.flow_size,
            min_frames=config.input_window,
            sample_fps=config.sample_fps,
            image_fps=args.image_fps,
        )
        report = evaluate_clips(
            scoring,
            val_clips,
            config.input_window,
            config.sample_fps,
            calibration.thresholds,
            calibration.threshold,
        )
        metrics.update({f"val_{name}": value for name, value in report.metrics().items()})
    metrics["train_seconds"] = round(train_seconds, 3)
    print(" ".join(f"{name}={value:.6g}" for name, value in metrics.items() if value is not None))

    return export_artifact(
        args.model_dir,
        scorer,
        config,
        {
            "temporal_window": config.input_window,  # frames the scorer takes (see ModelConfig.input_window)
            "sample_fps": config.sample_fps,
            "threshold": calibration.threshold,
            "thresholds": calibration.thresholds,
            "region_threshold": calibration.region_threshold,
            "false_alarms_per_hour": config.false_alarms_per_hour,
            # the generalized Pareto tail of each camera's held-out scores (training.tail), and the false
            # alarms per hour it predicts at the camera's threshold
            "tails": {camera: tail.to_dict() for camera, tail in calibration.tails.items()},
            "false_alarms_per_hour_predicted": calibration.predicted_false_alarms_per_hour,
            "metrics": metrics,
            "training": {
                "epochs": epochs,
                "epochs_run": epochs_run,
                "best_epoch": plateau.best_epoch,
                "patience": args.patience,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "seed": args.seed,
                "train_windows": len(data.train),
                "holdout_windows": {camera: len(w) for camera, w in data.holdout.items()},
                "incident_windows": len(data.incidents),
                "false_alarm_windows": data.false_alarm_windows,
                "skipped_clips": [{"source-ref": ref, "reason": reason} for ref, reason in skipped],
            },
        },
        args.model_version,
    )


class Plateau:
    """Early stopping on the held-out normal windows' prediction loss (never on labelled data): keeps
    the weights of the best epoch; `update` says stop when `patience` epochs have passed without the
    loss falling below (1 - PLATEAU_MIN_GAIN) x best. Patience 0 never stops (best weights still kept)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_loss = math.inf
        self.best_epoch = -1  # the epoch of the lowest loss, whose weights are kept
        self.gain_epoch = -1  # the last epoch that improved on the best by PLATEAU_MIN_GAIN
        self.best_state: dict | None = None

    def update(self, epoch: int, loss: float, predictor: nn.Module) -> bool:
        if loss < self.best_loss * (1.0 - PLATEAU_MIN_GAIN) or self.gain_epoch < 0:
            self.gain_epoch = epoch
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, epoch
            self.best_state = {k: v.detach().cpu().clone() for k, v in predictor.state_dict().items()}
        return bool(self.patience) and epoch - self.gain_epoch >= self.patience


def prediction_loss(
    predictor: Predictor,
    frames: torch.Tensor,
    windows: torch.Tensor,
    config: ModelConfig,
    batch_size: int,
    device: torch.device,
) -> float:
    """Mean squared prediction error over the given windows, unaugmented, in eval mode."""
    predictor.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(windows), 4 * batch_size):
            rows = windows[start : start + 4 * batch_size]
            inputs, target = split_window(batch_windows(frames[rows], config, None).to(device))
            total += F.mse_loss(predictor(inputs), target, reduction="sum").item() / target[0].numel()
    return total / max(1, len(windows))


class WeightAverage:
    """The exponential moving average's update (`AveragedModel`'s `avg_fn`): `decay` per step, warmed up
    as min(decay, (1 + n) / (10 + n)) after n updates, so a short run (a few dozen steps: a new camera's
    first minutes of footage) is not dominated by its first, untrained weights."""

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(
        self, averaged: torch.Tensor, current: torch.Tensor, n_averaged: torch.Tensor
    ) -> torch.Tensor:
        if not averaged.is_floating_point():  # a counter (BatchNorm's num_batches_tracked): the latest
            return current
        n = float(n_averaged)
        decay = min(self.decay, (1.0 + n) / (10.0 + n))
        return averaged * decay + current * (1.0 - decay)


class LearningRate:
    """Linear warm-up over the first 10% of the steps, then cosine decay to 2% of the peak; a function of
    the step alone, so a resumed run (even with more epochs) continues where it stopped."""

    def __init__(self, peak: float, step: int, total: int) -> None:
        self.peak, self.step, self.total = peak, step, max(1, total)

    def next(self) -> float:
        progress = min(1.0, self.step / self.total)
        self.step += 1
        if progress < 0.1:
            return self.peak * (0.1 + 0.9 * progress / 0.1)
        return self.peak * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * (progress - 0.1) / 0.9)))


def train_epoch(
    predictor: Predictor,
    optimizer: torch.optim.Optimizer,
    schedule: LearningRate,
    data: WindowSet,
    config: ModelConfig,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    gradient_weight: float = 0.0,
    ema: AveragedModel | None = None,
) -> float:
    """One pass over the training windows in random order; the mean normal loss (squared error; the
    objective adds `gradient_weight` x `gradient_loss`)."""
    predictor.train()
    order = torch.randperm(len(data.train), generator=generator)
    total = 0.0
    for start in range(0, len(order), batch_size):
        rows = data.train[order[start : start + batch_size]]
        inputs, target = split_window(batch_windows(data.grey[rows], config, generator).to(device))
        prediction = predictor(inputs)
        loss = F.mse_loss(prediction, target)
        objective = loss + gradient_weight * gradient_loss(prediction, target) if gradient_weight else loss
        if len(data.incidents):
            pick = torch.randint(0, len(data.incidents), (max(1, batch_size // 4),), generator=generator)
            inputs, target = split_window(
                batch_windows(data.grey[data.incidents[pick]], config, generator).to(device)
            )
            incident = block_errors(predictor(inputs), target, 1).flatten(1).mean(dim=1)
            objective = loss + F.relu(INCIDENT_MARGIN * loss.detach() - incident).mean()
        for group in optimizer.param_groups:
            group["lr"] = schedule.next()
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(predictor)
        total += loss.item() * len(rows)
    return total / len(data.train)


def gradient_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the horizontal and vertical image gradients (Liu et al.'s gradient
    constraint): the squared error alone is minimised by a blurred prediction, whose error on every
    normal edge then hides the error of what does not belong."""
    loss = prediction.new_zeros(())
    for dim in (-1, -2):
        loss = loss + (prediction.diff(dim=dim).abs() - target.diff(dim=dim).abs()).abs().mean()
    return loss


def score_windows(
    scorer: Scoring, frames: torch.Tensor, windows: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, maps) of the given windows (rows of frame indices), in order."""
    scores, maps = [], []
    with torch.inference_mode():
        for start in range(0, len(windows), 128):
            items = frames[windows[start : start + 128]].permute(0, 1, 3, 4, 2)
            s, m = scorer(items[:, 0] if window == 1 else items)
            scores.append(s)
            maps.append(m)
    return torch.cat(scores), torch.cat(maps)


def window_components(
    scorer: Scoring, frames: torch.Tensor, windows: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The unscaled (motion, prediction) maps of the given windows, in order."""
    motion, prediction = [], []
    with torch.inference_mode():
        for start in range(0, len(windows), 128):
            items = frames[windows[start : start + 128]].permute(0, 1, 3, 4, 2)
            m, p = scorer.components(items[:, 0] if window == 1 else items)
            motion.append(m)
            prediction.append(p)
    return torch.cat(motion), torch.cat(prediction)


def fit_normal_stats(scoring: Scoring, data: WindowSet, config: ModelConfig) -> None:
    """The scorer's normal statistics: each cell's normal speed (`motion_quantile` of its speeds over
    the training windows, at most `MOTION_STATS_WINDOWS` of them evenly spread), then the two maps'
    scales (`fusion_quantile` of the held-out normal frames' maxima of each raw map; the motion scale at
    least `motion_floor`: in a still scene the speeds are codec noise, a scale fitted to them would turn
    the noise of a few frames into an alarm). Held-out windows
    never feed the per-cell speeds: the threshold is calibrated on them."""
    scorer = scoring.scorer
    scorer.set_normal_stats(torch.zeros_like(scorer.motion_normal), 1.0, 1.0)
    rows = data.normal
    if len(rows) > MOTION_STATS_WINDOWS:
        rows = rows[torch.linspace(0, len(rows) - 1, MOTION_STATS_WINDOWS).round().long()]
    speeds, _ = window_components(scoring, data.frames, rows, config.input_window)
    normal = (
        torch.quantile(speeds.flatten(1).double(), config.motion_quantile, dim=0)
        .float()
        .view(speeds.shape[1:])
    )
    held = torch.cat(list(data.holdout.values()))
    speed, prediction = window_components(scoring, data.frames, held, config.input_window)
    motion_scale = max(
        config.motion_floor,
        float(torch.quantile(speed.flatten(1).amax(dim=1).double(), config.fusion_quantile)),
    )
    prediction_scale = float(
        torch.quantile(prediction.flatten(1).amax(dim=1).double(), config.fusion_quantile)
    )
    scorer.set_normal_stats(normal, motion_scale, prediction_scale)
    logger.info(
        "normal cell speed median %.3g, max %.3g px; scales: motion %.3g px, prediction %.3g",
        float(normal.median()),
        float(normal.max()),
        motion_scale,
        prediction_scale,
    )


def cli(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = get_args_parser().parse_args(argv)
    try:
        config = main(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"model_version={config['model_version']} artifact={args.model_dir / 'model.tar.gz'}")
    return 0
