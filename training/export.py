"""The model artifact: `model.pt` (TorchScript, self-contained) + `config.json`, and `model.tar.gz`
holding both at its root, the layout SageMaker extracts into /opt/ml/model."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tarfile
import warnings
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import torch

from training.env import VIGIL_CODE_VERSION
from training.model import AnomalyScorer, ModelConfig

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
ARCHIVE_FILE = "model.tar.gz"


def weights_hash(scorer: AnomalyScorer) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(scorer.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:8]


def default_model_version(scorer: AnomalyScorer, now: datetime) -> str:
    """`<UTC timestamp>-<first 8 hex of the weights' sha256>`, e.g. `20261125T145607Z-3f2a9c1e`."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{weights_hash(scorer)}"


def code_version() -> str:
    """$VIGIL_CODE_VERSION, else the git commit of this checkout, else the installed package version."""
    if os.environ.get(VIGIL_CODE_VERSION):
        return os.environ[VIGIL_CODE_VERSION]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return f"git-{result.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        try:
            return f"vigil-{metadata.version('vigil')}"
        except metadata.PackageNotFoundError:
            return "unknown"


def export_artifact(
    model_dir: Path, scorer: AnomalyScorer, config: ModelConfig, fields: dict, model_version: str | None
) -> dict:
    """Write model.pt, config.json and model.tar.gz into `model_dir`; return the config written.

    config.json declares `temporal_window` (T: the scorer's `ModelConfig.input_window`) and `sample_fps`:
    with T >= 2 the model takes uint8 N x T x H x W x 3 windows of frames `1 / sample_fps` s apart, oldest first, and scores the last."""
    model_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    scorer = scorer.cpu().eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated", category=FutureWarning)
        scripted = torch.jit.script(scorer)
    _check_scripted(scripted, scorer, config)
    scripted.save(str(model_dir / MODEL_FILE))
    artifact_config = {
        "schema_version": SCHEMA_VERSION,
        "model_version": model_version or default_model_version(scorer, now),
        "code_version": code_version(),
        "created_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "input_size": list(config.input_size),
        "block": config.block,
        "motion": config.motion_spec.to_dict(),
        **fields,
        "model": config.to_dict(),
    }
    (model_dir / CONFIG_FILE).write_text(json.dumps(artifact_config, indent=2) + "\n", encoding="utf-8")
    archive = model_dir / ARCHIVE_FILE
    partial = archive.with_suffix(".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for name in (MODEL_FILE, CONFIG_FILE):
            tar.add(model_dir / name, arcname=name)
    partial.replace(archive)
    logger.info("exported model %s to %s", artifact_config["model_version"], archive)
    return artifact_config


@torch.inference_mode()
def _check_scripted(scripted: torch.jit.ScriptModule, eager: AnomalyScorer, config: ModelConfig) -> None:
    """The scripted module must give what the eager one gives, on a frame of another size."""
    h, w = config.input_size
    window = config.input_window
    shape = (2, h + 7, w * 2, 3) if window == 1 else (2, window, h + 7, w * 2, 3)
    generator = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    speed = torch.rand((2, *config.motion_spec.grid), generator=generator) * 4
    expected, got = eager(frames, speed), scripted(frames, speed)
    for a, b in zip(expected, got, strict=True):
        if not torch.allclose(a, b, atol=1e-4, rtol=1e-4):
            raise RuntimeError("the TorchScript export does not match the trained model")
