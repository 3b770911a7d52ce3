"""Training and `python -m training.evaluate` end to end on real footage: a tiny run on the UCSD Ped2 dev
split (../shared/data/ucsd_ped2_dev; 2 normal clips, a few epochs, 1 labelled test clip). Skips when the
shared data is absent (it is never committed into the project)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
PED2 = REPO_ROOT.parent / "shared" / "data" / "ucsd_ped2_dev"


def python_module(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def ped2() -> Path:
    if not (PED2 / "train" / "manifest.jsonl").is_file() or not (PED2 / "test" / "manifest.jsonl").is_file():
        pytest.skip(f"../shared/data/ucsd_ped2_dev not found: no UCSD Ped2 dev split at {PED2} (train/ and test/ "
                    "with manifest.jsonl); it is shared data, not part of the repository")
    return PED2


@pytest.mark.slow
def test_training_and_evaluate_on_ucsd_ped2_dev(ped2, write_manifest, tmp_path):
    # GIVEN a training manifest of 2 real normal clips and a test manifest of 1 labelled real clip (its
    # line copied from the dev split, source-ref made absolute)
    train_lines = [json.loads(line) for line in (ped2 / "train" / "manifest.jsonl").read_text().splitlines()[:2]]
    test_line = json.loads((ped2 / "test" / "manifest.jsonl").read_text().splitlines()[0])
    for line, split in [*((line, "train") for line in train_lines), (test_line, "test")]:
        line["source-ref"] = str(ped2 / split / line["source-ref"])
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    write_manifest(tmp_path / "train", train_lines)
    write_manifest(tmp_path / "test", [test_line])
    n_test_frames = len(list(Path(test_line["source-ref"]).glob("*.jpg")))
    model_dir, scores_out = tmp_path / "model", tmp_path / "scores.json"

    # WHEN a tiny model trains on them (first 60 frames of each clip, 3 epochs) and evaluate scores the test clip
    trained = python_module("training", "--train", str(tmp_path / "train"), "--model-dir", str(model_dir),
                            "--seed", "0", "--epochs", "3", "--max-frames-per-clip", "60", "--threads", "2")
    assert trained.returncode == 0, trained.stderr
    evaluated = python_module("training.evaluate", "--model", str(model_dir / "model.tar.gz"),
                              "--data", str(tmp_path / "test"), "--scores-out", str(scores_out),
                              "--report-dir", str(tmp_path / "report"), "--threads", "2")

    # THEN training logged 3 epochs; evaluate exits 0, prints a frame-level AUC in [0, 1], and writes
    # scores.json with one finite float per frame of the test clip, keyed by its source-ref
    assert [line.split()[0] for line in trained.stdout.splitlines() if line.startswith("epoch=")] == [
        "epoch=0", "epoch=1", "epoch=2"
    ]
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = dict(item.partition("=")[::2] for item in evaluated.stdout.strip().splitlines()[-1].split())
    assert 0.0 <= float(metrics["auc"]) <= 1.0
    scores = json.loads(scores_out.read_text())
    assert list(scores) == [test_line["source-ref"]]
    assert n_test_frames == 180
    assert len(scores[test_line["source-ref"]]) == n_test_frames
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores[test_line["source-ref"]])
