"""`make bench-model`: issue 4's bar on real footage (UCSD Ped2 dev split, ../shared/data/ucsd_ped2_dev).

Trains the model on the 16 normal clips (`python -m training`, 2 torch threads), scores the 4 labelled
clips with the exported artifact (`python -m training.evaluate`), and measures in the same run the
frame-difference baseline (each frame's mean absolute difference from the previous frame). Prints
the frame-level AUC (min-max per clip, pooled), its ratio to the baseline, training time and scoring
throughput, and writes them to bench/results/model.json. Bars: AUC >= 0.95, training <= 15 min.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from training.calibration import min_max_per_clip, roc_auc
from training.data import load_clips
from training.model import to_grey

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "ucsd_ped2_dev"
RESULT = REPO_ROOT / "bench" / "results" / "model.json"
AUC_BAR = 0.95
TRAIN_BAR_S = 15 * 60


def frame_difference_auc(test: Path) -> float | None:
    """The baseline: score = mean |frame - previous frame| (greyscale, 64 x 96), standard protocol."""
    clips, _ = load_clips(test, (64, 96))
    scores = []
    for clip in clips:
        grey = to_grey(clip.frames.float().div(255.0))
        previous = torch.cat([grey[:1], grey[:-1]])
        scores.append((grey - previous).abs().mean(dim=(1, 2)))
    return roc_auc(torch.cat(min_max_per_clip(scores)), torch.cat([c.is_incident for c in clips]))


def run(argv: list[str], what: str) -> tuple[str, float]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, *argv], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"error: {what} failed ({result.returncode}): {result.stderr.strip().splitlines()[-1:]}")
    return result.stdout, time.monotonic() - started


def parse_metrics(line: str) -> dict[str, float]:
    return {k: float(v) for k, _, v in (item.partition("=") for item in line.split()) if v}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/bench_model.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"dev split (default: {DEFAULT_DATA})")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2, the bar's budget)")
    parser.add_argument("--out", type=Path, default=RESULT, help=f"result JSON (default: {RESULT})")
    args = parser.parse_args(argv)
    if not (args.data / "train" / "manifest.jsonl").is_file() or not (args.data / "test" / "manifest.jsonl").is_file():
        print(f"error: no UCSD Ped2 dev split at {args.data} (train/ and test/ with manifest.jsonl)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    baseline = frame_difference_auc(args.data / "test")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        train_out, train_s = run(["-m", "training", "--train", str(args.data / "train"), "--model-dir", str(model_dir),
                          "--threads", str(args.threads), "--seed", "0"], "training")
        out, _ = run(["-m", "training.evaluate", "--model", str(model_dir / "model.tar.gz"),
                      "--data", str(args.data / "test"), "--threads", str(args.threads),
                      "--report-dir", str(Path(tmp) / "report")], "evaluation")
        metrics = parse_metrics(out.strip().splitlines()[-1])
        config = json.loads((model_dir / "config.json").read_text())
    auc = metrics.get("auc")
    curve = [parse_metrics(line) for line in train_out.splitlines() if line.startswith("epoch=")]
    result = {
        "data": "UCSD Ped2 dev split: 16 normal training clips, 4 labelled test clips (01, 02, 04, 07)",
        "auc": auc,
        "auc_raw": metrics.get("auc_raw"),
        "baseline_frame_difference_auc": baseline,
        "auc_ratio_to_baseline": round(auc / baseline, 4) if auc and baseline else None,
        "event_recall": metrics.get("event_recall"),
        "false_alarms_per_hour": metrics.get("false_alarms_per_hour"),
        "train_seconds": round(train_s, 1),
        "scoring_frames_per_s": metrics.get("frames_per_s"),
        "threads": args.threads,
        "epochs_run": len(curve),
        "best_epoch": config.get("training", {}).get("best_epoch"),
        "loss_curve": [{k: round(v, 6) for k, v in point.items()} for point in curve],
        "model": config.get("model"),
        "model_version": config.get("model_version"),
        "bars": {"auc": AUC_BAR, "train_seconds": TRAIN_BAR_S},
        "passed": bool(auc is not None and auc >= AUC_BAR and train_s <= TRAIN_BAR_S),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"auc={auc} baseline_auc={baseline:.4f} ratio={result['auc_ratio_to_baseline']} "
          f"train_seconds={train_s:.0f} frames_per_s={metrics.get('frames_per_s')} passed={result['passed']}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
