"""`python -m training`: train the scene-anomaly autoencoder on a camera's normal clips (SageMaker
script mode), calibrate thresholds on held-out normal frames, export `model.tar.gz`.

Metrics are printed one per line group as `name=value` (`epoch=3 train_loss=0.0123`,
`holdout_score_max=...`, `threshold=...`, `val_score_max=...`) for SageMaker metric definitions.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training import env
from training.calibration import calibrate, roc_auc, score_frames
from training.data import DataError, load_cameras
from training.export import export_artifact
from training.model import AutoEncoder, ModelConfig

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
DEFAULT_INPUT_SIZE = ModelConfig().input_size


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training", description="Train Vigil's scene-anomaly model on normal clips."
    )
    parser.add_argument(
        "--train", type=Path, default=os.environ.get(env.SM_CHANNEL_TRAIN),
        help=f"manifest.jsonl or a folder holding manifests (default: ${env.SM_CHANNEL_TRAIN})",
    )
    parser.add_argument(
        "--validation", type=Path, default=os.environ.get(env.SM_CHANNEL_VALIDATION),
        help=f"labelled manifest or folder to report val_* metrics on (default: ${env.SM_CHANNEL_VALIDATION}, "
        "else none)",
    )
    parser.add_argument(
        "--model-dir", type=Path, default=os.environ.get(env.SM_MODEL_DIR),
        help=f"where model.tar.gz, model.pt and config.json go (default: ${env.SM_MODEL_DIR})",
    )
    parser.add_argument("--epochs", type=int, default=40, help="passes over the training frames (default: 40)")
    parser.add_argument("--batch-size", type=int, default=8, help="frames per optimiser step (default: 8)")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate (default: 0.005)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; runs are deterministic (default: 0)")
    parser.add_argument(
        "--checkpoint-dir", type=Path, default=None,
        help=f"save/resume checkpoints here; {env.SAGEMAKER_CHECKPOINT_DIR} is used instead when it exists "
        "(default: none, no checkpoints)",
    )
    parser.add_argument(
        "--input-size", type=int, nargs=2, metavar=("H", "W"), default=list(DEFAULT_INPUT_SIZE),
        help=f"model frame size, multiples of 16 (default: {DEFAULT_INPUT_SIZE[0]} {DEFAULT_INPUT_SIZE[1]})",
    )
    parser.add_argument(
        "--max-frames-per-clip", type=int, default=None,
        help="use only the first N frames of each clip, e.g. 50 for 5 s at 10 fps (default: all frames)",
    )
    parser.add_argument(
        "--model-version", default=None,
        help="version recorded in the artifact (default: UTC timestamp + short hash of the weights)",
    )
    return parser


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def augment(x: torch.Tensor, config: ModelConfig, generator: torch.Generator) -> torch.Tensor:
    """Light augmentation, float N x 3 x h x w in 0..1: a brightness gain and a small translation."""
    n, _, h, w = x.shape
    gain = 1.0 + (torch.rand(n, 1, 1, 1, generator=generator) * 2.0 - 1.0) * config.brightness
    x = (x * gain.to(x.device)).clamp(0.0, 1.0)
    s = config.max_shift
    if s:
        padded = F.pad(x, (s, s, s, s), mode="replicate")
        offsets = torch.randint(0, 2 * s + 1, (n, 2), generator=generator).tolist()
        x = torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])
    return x


def split_holdout(frames: torch.Tensor, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out): the last `fraction` of a camera's normal frames (at least one) are held out."""
    if len(frames) < 2:
        return frames, frames[:0]
    n_holdout = min(len(frames) - 1, max(1, round(len(frames) * fraction)))
    return frames[:-n_holdout], frames[-n_holdout:]


def checkpoint_dir(args: argparse.Namespace) -> Path | None:
    sagemaker_dir = Path(env.SAGEMAKER_CHECKPOINT_DIR)
    return sagemaker_dir if sagemaker_dir.is_dir() else args.checkpoint_dir


def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(path)


def main(args: argparse.Namespace) -> dict:
    """Train, calibrate, export; returns the artifact's config.json content."""
    for name in ("train", "model_dir"):
        if getattr(args, name) is None:
            raise DataError(f"--{name.replace('_', '-')} is required (or set its SageMaker environment variable)")
    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0:
        raise DataError("--epochs and --batch-size must be >= 1 and --lr > 0")
    started = time.monotonic()
    generator = seed_everything(args.seed)
    use_gpu = torch.cuda.is_available() and os.environ.get(env.SM_NUM_GPUS, "1") != "0"
    device = torch.device("cuda" if use_gpu else "cpu")

    ckpt_dir = checkpoint_dir(args)
    ckpt_path = ckpt_dir / CHECKPOINT_FILE if ckpt_dir else None
    resumed = torch.load(ckpt_path, weights_only=False) if ckpt_path and ckpt_path.exists() else None
    try:
        config = ModelConfig(**resumed["config"]) if resumed else ModelConfig(input_size=tuple(args.input_size))
    except ValueError as exc:
        raise DataError(str(exc)) from exc

    cameras = load_cameras(args.train, config.input_size, args.max_frames_per_clip)
    splits = {cam.camera_id: split_holdout(cam.normal, config.holdout_fraction) for cam in cameras}
    train_frames = torch.cat([train for train, _ in splits.values()])
    if len(train_frames) < 1 or not any(len(holdout) for _, holdout in splits.values()):
        raise DataError(f"need at least 2 normal frames (outside labelled events) in {args.train}")
    print(f"train_frames={len(train_frames)} holdout_frames={sum(len(h) for _, h in splits.values())}")

    autoencoder = AutoEncoder(config).to(device)
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=args.lr)
    start_epoch = 0
    if resumed:
        autoencoder.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        generator.set_state(resumed["generator"])
        start_epoch = resumed["epoch"] + 1
        logger.info("resumed from %s at epoch %s", ckpt_path, start_epoch)

    epochs = range(start_epoch, args.epochs)
    progress = tqdm(epochs, desc="training", disable=not sys.stderr.isatty())
    train_loss = float("nan")
    for epoch in progress:
        autoencoder.train()
        order = torch.randperm(len(train_frames), generator=generator)
        total = 0.0
        for start in range(0, len(order), args.batch_size):
            batch = train_frames[order[start : start + args.batch_size]].float().div(255.0)
            x = augment(batch, config, generator).to(device)
            loss = F.mse_loss(autoencoder(x), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
        train_loss = total / len(train_frames)
        print(f"epoch={epoch} train_loss={train_loss:.6f}")
        if ckpt_path:
            save_checkpoint(ckpt_path, {
                "model": autoencoder.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "args": vars(args), "config": config.to_dict(), "generator": generator.get_state(),
            })

    holdout_maps = {cam: score_frames(autoencoder, holdout, config, device)[1] for cam, (_, holdout) in splits.items()}
    calibration = calibrate(holdout_maps, config)
    metrics = {
        "train_loss": train_loss,
        "holdout_score_max": calibration.holdout_score_max,
        "threshold": calibration.threshold,
        "region_threshold": calibration.region_threshold,
    }
    if args.validation is not None:
        metrics.update(validation_metrics(autoencoder, args.validation, config, device, calibration.threshold))
    metrics["train_seconds"] = round(time.monotonic() - started, 3)
    print(" ".join(f"{name}={value:.6g}" for name, value in metrics.items() if value is not None))

    return export_artifact(
        args.model_dir, autoencoder, config,
        {
            "threshold": calibration.threshold,
            "thresholds": calibration.thresholds,
            "region_threshold": calibration.region_threshold,
            "metrics": metrics,
            "training": {
                "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                "train_frames": len(train_frames),
                "holdout_frames": {cam: len(holdout) for cam, (_, holdout) in splits.items()},
            },
        },
        args.model_version,
    )


def validation_metrics(
    autoencoder: AutoEncoder, path: Path, config: ModelConfig, device: torch.device, threshold: float
) -> dict[str, float | None]:
    """On a labelled set: the highest normal score, the lowest event score, ROC AUC, and the share of
    normal frames above the threshold."""
    cameras = load_cameras(path, config.input_size)
    scores = torch.cat([score_frames(autoencoder, cam.frames, config, device)[0] for cam in cameras])
    is_event = torch.cat([cam.is_event for cam in cameras])
    normal, events = scores[~is_event], scores[is_event]
    return {
        "val_score_max": float(normal.max()) if len(normal) else None,
        "val_event_score_min": float(events.min()) if len(events) else None,
        "val_false_positive_rate": float((normal > threshold).float().mean()) if len(normal) else None,
        "val_recall": float((events > threshold).float().mean()) if len(events) else None,
        "val_auc": roc_auc(scores, is_event),
    }


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
