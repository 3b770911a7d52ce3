"""`python -m training.evaluate --model model.tar.gz --data PATH --scores-out scores.json --report-dir DIR`

Scores every frame of every clip in a labelled manifest with the exported artifact (exactly what the
endpoint runs), and prints `name=value` lines:

- `auc`: frame-level ROC AUC by the standard protocol (each clip's scores min-max normalised, then
  all frames pooled; Liu et al., CVPR 2018), and `auc_raw` without the normalisation (what a single
  threshold sees);
- `event_recall`: labelled incidents with at least one frame over the camera's calibrated threshold;
- `false_alarms_per_hour`: runs of normal frames over the threshold per hour of normal footage, and
  `false_alarms_per_hour_predicted`: what the artifact's tail fit (`training.tail`, config.json `tails`)
  predicts at the same threshold;
- `frames`, `clips`, `skipped_clips`, `frames_per_s` (scoring throughput).

Writes `scores.json` (`{"<source-ref>": [one float per frame, in order]}`) and, in the report
directory, `roc.png`, one `scores-<clip>.png` per clip (score over time, labelled events shaded,
threshold dashed) and `metrics.json`. Clips that cannot be scored (undecodable, too short for the
model's window, mixed frame sizes) are skipped with a WARNING and listed in `metrics.json`.

Frames are loaded at `FRAME_SCALE` x the model's `input_size`, the size the worker sends
(`worker.detector.INPUT_SIZE_MARGIN`): the motion cue is computed at that resolution.

`--cut-prefix` scores each clip as two recordings, the clip from its first incident frame on (a
recording that starts mid-incident: the scorer never sees the frames before it) and the normal prefix
before it; the per-clip min-max normalisation spans both. Incidents must then be seen for what they
are, not as a change from the frames before them (issue 14).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from inference.scoring import scoring_for
from training.calibration import min_max_per_clip, roc_auc, runs_above
from training.data import DEFAULT_IMAGE_FPS, ClipFrames, DataError, load_clips
from training.tail import Tail
from training.windows import score_clip

logger = logging.getLogger(__name__)

FRAME_SCALE = 2  # frames are scored at this x input_size: what the worker sends (INPUT_SIZE_MARGIN)

Scorer = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class ClipReport:
    source_ref: str
    camera_id: str
    fps: float
    scores: torch.Tensor  # float N
    is_incident: torch.Tensor  # bool N
    events: list[tuple[int, int]]  # labelled incidents, inclusive frame ranges
    threshold: float | None
    predicted_rate: float | None = None  # false alarms per hour the tail fit predicts at `threshold`


@dataclass
class EvaluationReport:
    clips: list[ClipReport]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def metrics(self) -> dict[str, float | None]:
        scores = [c.scores for c in self.clips]
        labels = torch.cat([c.is_incident for c in self.clips])
        n_frames = len(labels)
        events = [(c, e) for c in self.clips for e in c.events]
        calibrated = [c for c in self.clips if c.threshold is not None]
        detected = sum(
            1
            for c, (a, b) in events
            if c.threshold is not None and bool((c.scores[a : b + 1] > c.threshold).any())
        )
        normal_hours = sum(int((~c.is_incident).sum()) / c.fps for c in calibrated) / 3600.0
        predicted = [c for c in calibrated if c.predicted_rate is not None]
        predicted_hours = sum(int((~c.is_incident).sum()) / c.fps for c in predicted) / 3600.0
        false_alarms = sum(
            runs_above(c.scores.masked_fill(c.is_incident, float("-inf")), c.threshold)  # type: ignore[arg-type]
            for c in calibrated
        )
        normal_frames = sum(int((~c.is_incident).sum()) for c in calibrated)
        normal_over = sum(int(((c.scores > c.threshold) & ~c.is_incident).sum()) for c in calibrated)  # type: ignore[operator]
        return {
            "auc": roc_auc(torch.cat(min_max_per_clip(scores)), labels),
            "auc_raw": roc_auc(torch.cat(scores), labels),
            "event_recall": detected / len(events) if events and calibrated else None,
            "false_alarms_per_hour": false_alarms / normal_hours if normal_hours > 0 else None,
            # the share of normal frames over the calibrated threshold (frames, not runs: see false_alarms_per_hour)
            "false_positive_rate": normal_over / normal_frames if normal_frames else None,
            "false_alarms_per_hour_predicted": (
                sum(c.predicted_rate * int((~c.is_incident).sum()) / c.fps for c in predicted)
                / 3600.0  # type: ignore[operator]
                / predicted_hours
                if predicted_hours > 0
                else None
            ),
            "frames": float(n_frames),
            "clips": float(len(self.clips)),
            "skipped_clips": float(len(self.skipped)),
            "frames_per_s": n_frames / self.seconds if self.seconds > 0 else None,
        }


def incident_ranges(clip: ClipFrames) -> list[tuple[int, int]]:
    """Inclusive frame ranges of the clip's incidents (runs of incident frames)."""
    return _ranges(clip.is_incident)


def _ranges(is_incident: torch.Tensor) -> list[tuple[int, int]]:
    flags = is_incident.tolist()
    ranges, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            ranges.append((start, i - 1))
            start = None
    return ranges


def evaluate_clips(
    scorer: Scorer,
    clips: list[ClipFrames],
    window: int,
    sample_fps: float,
    thresholds: dict[str, float],
    default_threshold: float | None,
    tails: dict[str, Tail] | None = None,
    cut_prefix: bool = False,
) -> EvaluationReport:
    """Score every frame of every clip (windows at each clip's stride) and keep what the metrics need;
    `cut_prefix`: see the module docstring."""
    started = time.monotonic()
    reports = []
    tails = tails or {}
    for clip in clips:
        stride = clip.stride(sample_fps)
        incident = clip.is_incident
        first = int(incident.nonzero()[0]) if cut_prefix and bool(incident.any()) else 0
        if first > 0:
            parts = [
                score_clip(scorer, clip.frames[first:], window, stride)[0],
                score_clip(scorer, clip.frames[:first], window, stride)[0],
            ]
            scores, incident = torch.cat(parts), torch.cat([incident[first:], incident[:first]])
        else:
            scores, _ = score_clip(scorer, clip.frames, window, stride)
        if not bool(torch.isfinite(scores).all()):
            raise DataError(f"the model gave non-finite scores on clip {clip.clip.source_ref}")
        threshold = thresholds.get(clip.camera_id, default_threshold)
        tail = tails.get(clip.camera_id) or (max(tails.values(), key=lambda t: t.rate) if tails else None)
        reports.append(
            ClipReport(
                source_ref=clip.clip.source_ref,
                camera_id=clip.camera_id,
                fps=clip.fps,
                scores=scores,
                is_incident=incident,
                events=_ranges(incident),
                threshold=threshold,
                predicted_rate=tail.rate_above(threshold)
                if tail is not None and threshold is not None
                else None,
            )
        )
    return EvaluationReport(clips=reports, seconds=time.monotonic() - started)


def load_artifact(path: Path) -> tuple[torch.jit.ScriptModule, dict]:
    """The TorchScript model and config.json of `model.tar.gz`, or of a folder holding them."""
    if not path.exists():
        raise DataError(f"model not found: {path}")
    try:
        if path.is_dir():
            return _load_from_dir(path)
        with tempfile.TemporaryDirectory() as tmp, tarfile.open(path) as tar:
            tar.extractall(tmp, filter="data")
            return _load_from_dir(Path(tmp))
    except (OSError, tarfile.TarError, RuntimeError, ValueError, KeyError) as exc:
        raise DataError(f"cannot load model {path}: {exc}") from exc


def _load_from_dir(folder: Path) -> tuple[torch.jit.ScriptModule, dict]:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.load.*is deprecated", category=FutureWarning)
        module = torch.jit.load(str(folder / "model.pt"), map_location="cpu").eval()
    return module, config


def write_plots(report: EvaluationReport, folder: Path) -> list[Path]:
    """roc.png and one scores-<clip>.png per clip; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    scores = torch.cat(min_max_per_clip([c.scores for c in report.clips]))
    labels = torch.cat([c.is_incident for c in report.clips])
    fpr, tpr = roc_points(scores, labels)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUC {report.metrics()['auc'] or float('nan'):.3f}")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(
        xlabel="false positive rate", ylabel="true positive rate", title="frame-level ROC (min-max per clip)"
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(folder / "roc.png", dpi=100)
    plt.close(fig)
    written.append(folder / "roc.png")
    for clip in report.clips:
        fig, ax = plt.subplots(figsize=(8, 2.6))
        ax.plot(clip.scores.numpy(), linewidth=1.0)
        for a, b in clip.events:
            ax.axvspan(a, b, color="tab:red", alpha=0.15)
        if clip.threshold is not None:
            ax.axhline(clip.threshold, color="tab:red", linestyle="--", linewidth=0.8)
        ax.set(xlabel="frame", ylabel="score", title=f"{clip.source_ref} (shaded: labelled events)")
        fig.tight_layout()
        path = folder / f"scores-{_safe_name(clip.source_ref)}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def roc_points(scores: torch.Tensor, positive: torch.Tensor) -> tuple[list[float], list[float]]:
    """(false positive rates, true positive rates) as the threshold falls through the scores."""
    order = scores.double().argsort(descending=True)
    hits = positive[order].double()
    tpr = torch.cat([torch.zeros(1), hits.cumsum(0) / max(1.0, float(hits.sum()))])
    fpr = torch.cat([torch.zeros(1), (1 - hits).cumsum(0) / max(1.0, float((1 - hits).sum()))])
    return fpr.tolist(), tpr.tolist()


def _safe_name(source_ref: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", source_ref).strip("_") or "clip"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate", description="Score a labelled data set with a model artifact."
    )
    parser.add_argument(
        "--model", type=Path, required=True, help="model.tar.gz, or a folder with model.pt + config.json"
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="labelled manifest.jsonl or a folder holding one"
    )
    parser.add_argument(
        "--scores-out", type=Path, default=None, help="write per-frame scores here (default: none)"
    )
    parser.add_argument(
        "--report-dir", type=Path, default=None, help="write plots and metrics.json here (default: none)"
    )
    parser.add_argument(
        "--image-fps",
        type=float,
        default=DEFAULT_IMAGE_FPS,
        help=f"frame rate of image-folder clips whose manifest line has no fps (default: {DEFAULT_IMAGE_FPS:g})",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)"
    )
    parser.add_argument(
        "--cut-prefix",
        action="store_true",
        help="score each clip from its first incident frame on as its own recording, its normal prefix as "
        "another (default: off, clips as they are)",
    )
    return parser


def main(args: argparse.Namespace) -> dict[str, float | None]:
    if args.threads:
        torch.set_num_threads(args.threads)
    module, config = load_artifact(args.model)
    try:
        size = (int(config["input_size"][0]), int(config["input_size"][1]))
        window = int(config.get("temporal_window") or 1)
        sample_fps = float(config.get("sample_fps") or 5.0)
        tails = {str(k): Tail(**v) for k, v in (config.get("tails") or {}).items()}
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DataError(f"model {args.model} has an invalid config.json: {exc}") from exc
    frame_size = (size[0] * FRAME_SCALE, size[1] * FRAME_SCALE)
    clips, skipped = load_clips(
        args.data, frame_size, min_frames=window, sample_fps=sample_fps, image_fps=args.image_fps
    )
    report = evaluate_clips(
        scoring_for(module, config),
        clips,
        window,
        sample_fps,
        {str(k): float(v) for k, v in (config.get("thresholds") or {}).items()},
        None if config.get("threshold") is None else float(config["threshold"]),
        tails,
        args.cut_prefix,
    )
    report.skipped = skipped
    metrics = report.metrics()
    if args.scores_out is not None:
        args.scores_out.parent.mkdir(parents=True, exist_ok=True)
        args.scores_out.write_text(
            json.dumps({c.source_ref: [round(float(s), 6) for s in c.scores] for c in report.clips}) + "\n",
            encoding="utf-8",
        )
    if args.report_dir is not None:
        write_plots(report, args.report_dir)
        (args.report_dir / "metrics.json").write_text(
            json.dumps(
                {
                    **metrics,
                    "model_version": config.get("model_version"),
                    "skipped": [{"source-ref": ref, "reason": reason} for ref, reason in skipped],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return metrics


def cli(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = get_args_parser().parse_args(argv)
    try:
        metrics = main(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(" ".join(f"{name}={_fmt(value)}" for name, value in metrics.items() if value is not None))
    return 0


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) >= 1 else f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(cli())
