"""`python -m training` end to end on real H.264 clips: artifact layout, calibration that separates an
intruder from the empty scene, checkpoint resume, determinism, and clear errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from training.train import cli, get_args_parser, main

REPO_ROOT = Path(__file__).resolve().parents[3]
TINY = ["--epochs", "8", "--batch-size", "4", "--input-size", "48", "80"]


def run_training(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )


def score(model_path: Path, video: Path, window: int, stride: int) -> list[float]:
    """Scores of every frame of `video` by the exported model, in a process that never imports training:
    frame i is scored in the window of frames i - (window - 1) * stride, ..., i (clamped at 0)."""
    code = (
        "import json, sys, av, numpy as np, torch\n"
        f"m = torch.jit.load({str(model_path)!r})\n"
        f"with av.open({str(video)!r}) as c: x = np.stack([f.to_ndarray(format='rgb24') for f in c.decode(video=0)])\n"
        f"idx = np.clip(np.arange(len(x))[:, None] - {stride} * np.arange({window} - 1, -1, -1)[None], 0, None)\n"
        "assert 'training' not in sys.modules\n"
        "print(json.dumps(m(torch.from_numpy(x[idx]))[0].tolist()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


@pytest.mark.slow
def test_train_on_still_scene_separates_intruder(make_video, write_manifest, tmp_path):
    # GIVEN a 50-frame H.264 clip of a still scene (no intruder) listed in a manifest
    clip = make_video("normal.mp4", n_frames=50)
    write_manifest(clip.parent, [{"source-ref": clip.name, "camera_id": "cam-1"}])
    model_dir = tmp_path / "model"

    # WHEN the training CLI runs
    result = run_training("--train", str(clip.parent), "--model-dir", str(model_dir), *TINY, "--model-version", "v-test")

    # THEN exit 0, metrics as name=value lines
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "train_windows=40 holdout_windows=10 incident_windows=0 false_alarm_windows=0 clips=1 skipped_clips=0"
    )
    assert [line.split()[0] for line in lines[1:9]] == [f"epoch={i}" for i in range(8)]
    assert lines[9].startswith("train_loss=") and " threshold=" in lines[9]
    assert lines[-1] == f"model_version=v-test artifact={model_dir / 'model.tar.gz'}"

    # AND the SageMaker layout: model.tar.gz holding model.pt + config.json, unpacked beside it
    with tarfile.open(model_dir / "model.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["config.json", "model.pt"]
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "model.pt", "model.tar.gz"]
    config = json.loads((model_dir / "config.json").read_text())
    assert {
        "schema_version", "model_version", "code_version", "input_size", "threshold", "thresholds",
        "region_threshold", "created_at", "metrics", "temporal_window", "sample_fps",
    } <= set(config)
    assert (config["schema_version"], config["model_version"], config["input_size"]) == ("1", "v-test", [48, 80])
    assert (config["temporal_window"], config["sample_fps"], config["model"]["score_frames"]) == (7, 5.0, 4)
    assert config["thresholds"] == {"cam-1": config["threshold"]}

    # AND the exported model (loaded without training/) scores intruder frames above the threshold and
    # the held-out normal frames (the last 10) below it
    normal_scores = score(model_dir / "model.pt", clip, 7, 2)
    intruder_scores = score(model_dir / "model.pt", make_video("intruder.mp4", n_frames=20, intruder=(5, 14)), 7, 2)
    assert max(normal_scores[40:]) < config["threshold"]
    # (frames 15..20 still have the intruder in their window: they may score either way)
    above = [s > config["threshold"] for s in intruder_scores]
    # (a frame's map averages its last 4 predictions: the intruder's first one or two frames, 0.2 s apart,
    # may still be outvoted by the empty room's; from then on every frame is over the threshold)
    assert (above[:5], above[7:15]) == ([False] * 5, [True] * 8)


def test_training_resumes_from_checkpoint_and_is_deterministic(make_video, write_manifest, tmp_path, capsys):
    # GIVEN a normal clip, a run of 3 epochs that leaves a checkpoint
    clip = make_video("normal.mp4", n_frames=20)
    write_manifest(clip.parent, [{"source-ref": clip.name}])
    base = ["--train", str(clip.parent), "--input-size", "48", "80", "--model-version", "v"]
    ckpt = tmp_path / "ckpt"
    main(get_args_parser().parse_args([*base, "--model-dir", str(tmp_path / "a"), "--epochs", "3",
                                       "--checkpoint-dir", str(ckpt)]))
    capsys.readouterr()

    # WHEN it is run again for 5 epochs with the same checkpoint dir
    resumed = main(get_args_parser().parse_args([*base, "--model-dir", str(tmp_path / "b"), "--epochs", "5",
                                                 "--checkpoint-dir", str(ckpt)]))

    # THEN only epochs 3 and 4 run, and the checkpoint records them
    epochs = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("epoch=")]
    assert epochs == ["epoch=3", "epoch=4"]
    state = torch.load(ckpt / "checkpoint.pt", weights_only=False)
    assert (state["epoch"], state["config"]["input_size"], set(state)) == (
        4, (48, 80), {"model", "ema", "optimizer", "epoch", "args", "config", "generator", "plateau"},
    )
    assert set(state["plateau"]) == {"patience", "best_loss", "best_epoch", "gain_epoch", "best_state"}

    # AND the same seed without a checkpoint gives the same thresholds twice
    first = main(get_args_parser().parse_args([*base, "--model-dir", str(tmp_path / "c"), "--epochs", "1"]))
    second = main(get_args_parser().parse_args([*base, "--model-dir", str(tmp_path / "d"), "--epochs", "1"]))
    assert (first["threshold"], first["thresholds"]) == (second["threshold"], second["thresholds"])
    assert resumed["training"]["epochs"] == 5


def test_validation_channel_reports_val_metrics(make_video, write_manifest, tmp_path, capsys):
    # GIVEN a normal training clip and a labelled validation clip with an intruder in frames 10..19
    train = make_video("normal.mp4", n_frames=30)
    write_manifest(train.parent, [{"source-ref": train.name}])
    val_dir = tmp_path / "val"
    val_dir.mkdir()
    val_clip = make_video("val.mp4", n_frames=50, intruder=(10, 19)).rename(val_dir / "val.mp4")
    write_manifest(val_dir, [{"source-ref": val_clip.name, "events": [{"start_frame": 10, "end_frame": 19}]}])

    # WHEN training runs with --validation
    config = main(get_args_parser().parse_args([
        "--train", str(train.parent / "manifest.jsonl"), "--validation", str(val_dir),
        "--model-dir", str(tmp_path / "m"), *TINY,
    ]))

    # THEN val metrics, printed as name=value: the intruder is found, and its frames rank above the
    # empty scene's (not perfectly: the 10 frames just after it vanishes still have it in their window,
    # and its vanishing is motion too: 0.89 with the motion cue, 0.9+ with prediction error alone)
    metrics = config["metrics"]
    assert metrics["val_event_recall"] == 1.0
    assert metrics["val_auc"] > 0.85
    assert f"val_auc={metrics['val_auc']:.6g}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty", "error: manifest is empty: {tmp}/data/manifest.jsonl\n"),
        ("missing-clip", "error: source-ref gone.mp4 not found (looked for {tmp}/data/gone.mp4)\n"),
        ("bad-clip", "error: no usable clip in {tmp}/data: cannot decode clip {tmp}/data/bad.mp4: "),
        ("bad-size", "error: input_size (50, 80) must be positive multiples of 8"),
    ],
)
def test_bad_input_returns_2_with_one_line(tmp_path, write_manifest, capsys, setup, message):
    # GIVEN an empty or broken training channel, or a bad flag
    data = tmp_path / "data"
    data.mkdir()
    extra = ["--input-size", "50", "80"] if setup == "bad-size" else []
    if setup == "empty":
        (data / "manifest.jsonl").write_text("")
    elif setup == "missing-clip":
        write_manifest(data, [{"source-ref": "gone.mp4"}])
    elif setup == "bad-clip":
        (data / "bad.mp4").write_bytes(b"\0" * 100)
        write_manifest(data, [{"source-ref": "bad.mp4"}])

    # WHEN the CLI runs THEN status 2 and one line naming the problem
    status = cli(["--train", str(data), "--model-dir", str(tmp_path / "m"), *extra])
    err = capsys.readouterr().err
    assert (status, err.count("\n")) == (2, 1)
    assert err.startswith(message.format(tmp=tmp_path))


def test_missing_manifest_exits_2_from_the_command_line(tmp_path):
    result = run_training("--train", str(tmp_path / "nope"), "--model-dir", str(tmp_path / "m"))
    assert (result.returncode, result.stderr) == (2, f"error: manifest not found: {tmp_path / 'nope'}\n")


@pytest.mark.parametrize("given", ["folder", "one-video"])
def test_a_folder_of_videos_or_one_video_trains_with_a_manifest_written_for_it(make_video, tmp_path, capsys, given):
    # GIVEN footage with no manifest: a folder of videos (one in a subfolder), or a single video
    footage = tmp_path / "footage"
    (footage / "monday").mkdir(parents=True)
    first = make_video("a.mp4", n_frames=20).rename(footage / "a.mp4")
    second = make_video("b.mp4", n_frames=20).rename(footage / "monday" / "b.mp4")
    train = footage if given == "folder" else first
    model_dir = tmp_path / "m"

    # WHEN `make train DATA=<it>` runs (python -m training --train <it>)
    status = cli(["--train", str(train), "--model-dir", str(model_dir), "--camera-id", "lobby-1",
                  "--epochs", "1", "--batch-size", "4", "--input-size", "48", "80"])

    # THEN it trains, from a manifest it wrote under the model folder (the footage folder untouched),
    # listing each video as a normal clip of the camera, as the archiver lists its clips
    out = capsys.readouterr()
    assert status == 0, out.err
    videos = [first, second] if given == "folder" else [first]
    manifest = model_dir / "manifest" / "manifest.jsonl"
    assert [json.loads(line) for line in manifest.read_text().splitlines()] == [
        {"source-ref": str(video.resolve()), "camera_id": "lobby-1", "kind": "normal", "events": []}
        for video in videos
    ]
    assert sorted(p.name for p in footage.rglob("*")) == ["a.mp4", "b.mp4", "monday"]
    assert (model_dir / "model.tar.gz").is_file()
    assert f"clips={len(videos)} skipped_clips=0" in out.out


def test_a_folder_with_neither_manifest_nor_video_says_what_it_takes(tmp_path, capsys):
    # GIVEN a folder of text files
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("hello")
    # WHEN training runs on it THEN one line says a folder of videos, a video or a manifest is needed
    status = cli(["--train", str(data), "--model-dir", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert (status, err.count("\n")) == (2, 1)
    assert err.startswith("error: no manifest.jsonl and no video (.mp4, ")
    assert err.endswith(f") under {data}: give a folder of videos, one video, or a manifest\n")
