"""`python -m training.launch`: the SageMaker training job's settings, and the v3 ModelTrainer built from
them, without calling AWS."""

from __future__ import annotations

import re

import pytest

from training.launch import LaunchError, build_trainer, cli, get_args_parser, job_settings


def settings_for(*argv: str) -> dict:
    return job_settings(get_args_parser().parse_args(["--bucket", "vigil-archive", "--role", "arn:aws:iam::1:role/t",
                                                      *argv]), "eu-west-1")


def test_job_reads_the_archive_and_writes_model_and_checkpoints_back():
    settings = settings_for("--camera-id", "lobby-1", "--hyperparameter", "steps=600")
    assert {k: settings[k] for k in ("channels", "command", "output", "checkpoints", "spot")} == {
        "channels": {"train": "s3://vigil-archive/manifests/camera=lobby-1/", "clips": "s3://vigil-archive/clips/"},
        "command": "pip install --quiet opencv-python-headless==5.0.0.93 && python -m training --train /opt/ml/input/data/train --model-dir /opt/ml/model --steps 600",
        "output": "s3://vigil-archive/models/",
        "checkpoints": "s3://vigil-archive/checkpoints/",
        "spot": True,
    }


def test_metric_definitions_match_the_lines_training_prints():
    line = "train_loss=0.0165 holdout_score_max=0.07 threshold=0.09 val_auc=0.9512 train_seconds=55.7"
    found = {m["name"]: re.search(m["regex"], line) for m in settings_for()["metric_definitions"]}
    assert {name: match.group(1) for name, match in found.items() if match} == {
        "train_loss": "0.0165", "holdout_score_max": "0.07", "threshold": "0.09", "val_auc": "0.9512",
        "train_seconds": "55.7",
    }


def test_model_trainer_is_configured_for_spot_with_checkpoints(monkeypatch):
    # GIVEN no AWS: the SDK's IAM role check (iam:SimulatePrincipalPolicy) is the one call construction makes
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    trainer = build_trainer(settings_for())
    assert (trainer.compute.enable_managed_spot_training, trainer.checkpoint_config.s3_uri) == (
        True, "s3://vigil-archive/checkpoints/",
    )
    assert [c.channel_name for c in trainer.input_data_config] == ["train", "clips"]
    assert trainer.stopping_condition.max_wait_time_in_seconds == 7200


def test_missing_bucket_or_role_is_one_line(capsys, monkeypatch):
    monkeypatch.delenv("VIGIL_ARCHIVE_BUCKET", raising=False)
    monkeypatch.delenv("VIGIL_TRAINING_ROLE_ARN", raising=False)
    assert cli(["--dry-run"]) == 2
    assert capsys.readouterr().err == "error: --bucket is required (or set $VIGIL_ARCHIVE_BUCKET)\n"
    with pytest.raises(LaunchError, match="NAME=VALUE"):
        settings_for("--hyperparameter", "oops")
