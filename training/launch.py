"""`python -m training.launch` (`make train TARGET=aws`): run `python -m training` as a SageMaker
training job with the SageMaker Python SDK v3 (`sagemaker.train.ModelTrainer`, which replaced the
removed `sagemaker.estimator`).

The job: this repository's `training/`, `contracts/` and `inference/` (the OpenCV greyscale input and
motion cue the model is calibrated on, the same code the endpoint runs) as the source code (script mode,
entry `python -m training`, after installing the pinned OpenCV the AWS PyTorch image may lack), the archive bucket's clips and manifests as the `train` channel (and an
optional `validation` channel), `model.tar.gz` to `s3://<bucket>/<output-prefix>/`, managed spot
capacity with checkpoints synced to `s3://<bucket>/<checkpoint-prefix>/<job>/` (so an interrupted
job resumes where it stopped), and metric definitions matching the `name=value` lines the script
prints. `--dry-run` prints the job's settings and calls nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from training import env

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker"
METRICS = ("train_loss", "holdout_score_max", "threshold", "val_auc", "val_event_recall", "train_seconds")
SOURCE_IGNORE = [".venv", ".git", "out", "tests", "infra", "worker", "alert_lambda", "console", "bench", "local", "archive", "kvs"]


def metric_definitions() -> list[dict[str, str]]:
    """One regex per metric the script prints as `name=value` (e.g. `val_auc=0.9512`)."""
    return [{"name": name, "regex": rf"\b{name}=([-+0-9.eE]+)"} for name in METRICS]


def opencv_pin() -> str:
    """requirements.lock's `opencv-python-headless==X` (`inference.motion` and `inference.grey` need it)."""
    lock = REPO_ROOT / "requirements.lock"
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.startswith("opencv-python-headless=="):
            return line.strip()
    raise LaunchError(f"no opencv-python-headless pin in {lock}")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.launch", description="Launch a SageMaker training job.")
    parser.add_argument(
        "--bucket", default=os.environ.get(env.VIGIL_ARCHIVE_BUCKET),
        help=f"archive bucket holding clips/ and manifests/ (default: ${env.VIGIL_ARCHIVE_BUCKET})",
    )
    parser.add_argument("--camera-id", default=None, help="train on this camera's clips only (default: all cameras)")
    parser.add_argument("--validation-s3", default=None, help="s3:// URI of a labelled validation set (default: none)")
    parser.add_argument(
        "--role", default=os.environ.get(env.VIGIL_TRAINING_ROLE_ARN),
        help=f"IAM role the job runs as (default: ${env.VIGIL_TRAINING_ROLE_ARN})",
    )
    parser.add_argument("--instance-type", default="ml.m5.xlarge", help="training instance (default: ml.m5.xlarge)")
    parser.add_argument("--image", default=None, help="training image URI (default: AWS PyTorch 2.5 CPU training image)")
    parser.add_argument("--output-prefix", default="models", help="S3 prefix for model.tar.gz (default: models)")
    parser.add_argument("--checkpoint-prefix", default="checkpoints", help="S3 prefix for checkpoints (default: checkpoints)")
    parser.add_argument("--max-runtime-s", type=int, default=3600, help="job time limit (default: 3600)")
    parser.add_argument("--max-wait-s", type=int, default=7200, help="spot: time limit including waits (default: 7200)")
    parser.add_argument("--no-spot", action="store_true", help="on-demand capacity instead of managed spot")
    parser.add_argument("--hyperparameter", action="append", default=[], metavar="NAME=VALUE",
                        help="passed to python -m training as --NAME VALUE (repeatable)")
    parser.add_argument("--wait", action="store_true", help="wait for the job and stream its logs")
    parser.add_argument("--dry-run", action="store_true", help="print the job's settings as JSON; call nothing")
    return parser


class LaunchError(Exception):
    """Bad launcher input; the message says what to fix."""


def job_settings(args: argparse.Namespace, region: str) -> dict[str, Any]:
    """Everything the job is made of, as plain data (what --dry-run prints)."""
    if not args.bucket:
        raise LaunchError(f"--bucket is required (or set ${env.VIGIL_ARCHIVE_BUCKET})")
    if not args.role:
        raise LaunchError(f"--role is required (or set ${env.VIGIL_TRAINING_ROLE_ARN})")
    hyperparameters = {}
    for item in args.hyperparameter:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise LaunchError(f"--hyperparameter must be NAME=VALUE, got {item!r}")
        hyperparameters[name] = value
    camera = f"camera={args.camera_id}/" if args.camera_id else ""
    # The clips channel keeps the key layout under /opt/ml/input/data/clips, where training.data
    # resolves the manifests' s3:// source-refs (longest existing key suffix under a parent folder).
    channels = {"train": f"s3://{args.bucket}/manifests/{camera}", "clips": f"s3://{args.bucket}/clips/"}
    if args.validation_s3:
        channels["validation"] = args.validation_s3
    command = f"pip install --quiet {opencv_pin()} && python -m training --train /opt/ml/input/data/train --model-dir /opt/ml/model"
    if args.validation_s3:
        command += " --validation /opt/ml/input/data/validation"
    command += "".join(f" --{name} {value}" for name, value in sorted(hyperparameters.items()))
    return {
        "image": args.image or DEFAULT_IMAGE.format(region=region),
        "role": args.role,
        "instance_type": args.instance_type,
        "spot": not args.no_spot,
        "channels": channels,
        "command": command,
        "output": f"s3://{args.bucket}/{args.output_prefix}/",
        "checkpoints": f"s3://{args.bucket}/{args.checkpoint_prefix}/",
        "max_runtime_s": args.max_runtime_s,
        "max_wait_s": args.max_wait_s,
        "metric_definitions": metric_definitions(),
    }


def build_trainer(settings: dict[str, Any], session: Any = None) -> Any:
    """A `sagemaker.train.ModelTrainer` for the settings (`session`: a `sagemaker` Session to use)."""
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        InputData,
        MetricDefinition,
        OutputDataConfig,
        SourceCode,
        StoppingCondition,
    )
    from sagemaker.train import ModelTrainer

    trainer = ModelTrainer(
        sagemaker_session=session,
        role=settings["role"],
        base_job_name="vigil-training",
        training_image=settings["image"],
        source_code=SourceCode(source_dir=str(REPO_ROOT), command=settings["command"], ignore_patterns=SOURCE_IGNORE),
        compute=Compute(
            instance_type=settings["instance_type"], instance_count=1, enable_managed_spot_training=settings["spot"],
        ),
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=settings["max_runtime_s"],
            max_wait_time_in_seconds=settings["max_wait_s"] if settings["spot"] else None,
        ),
        output_data_config=OutputDataConfig(s3_output_path=settings["output"]),
        input_data_config=[InputData(channel_name=name, data_source=uri) for name, uri in settings["channels"].items()],
        checkpoint_config=CheckpointConfig(s3_uri=settings["checkpoints"], local_path=env.SAGEMAKER_CHECKPOINT_DIR),
        environment={"PYTHONUNBUFFERED": "1"},
    )
    return trainer.with_metric_definitions(
        [MetricDefinition(name=m["name"], regex=m["regex"]) for m in settings["metric_definitions"]]
    )


def main(args: argparse.Namespace, session: Any = None) -> dict[str, Any]:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    settings = job_settings(args, region)
    if args.dry_run:
        return settings
    trainer = build_trainer(settings, session)
    trainer.train(wait=args.wait, logs=args.wait)
    job = getattr(trainer, "_latest_training_job", None)
    settings["job_name"] = getattr(job, "training_job_name", None)
    return settings


def cli(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = get_args_parser().parse_args(argv)
    try:
        settings = main(args)
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(settings, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
