"""Manifest reading and source-ref resolution, on real files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from contracts.manifest import ManifestLine
from training.data import (
    Clip,
    ClipError,
    DataError,
    find_manifests,
    load_clip,
    load_clips,
    read_manifest,
    resolve_source_ref,
    unique_clips,
)


def test_s3_source_ref_resolves_under_the_channel_root(tmp_path):
    # GIVEN a SageMaker channel: manifest and clip keys preserved under the channel folder
    manifest_dir = tmp_path / "manifests" / "camera=c" / "date=d"
    manifest_dir.mkdir(parents=True)
    clip = tmp_path / "clips" / "camera=c" / "date=d" / "x.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"")

    # WHEN the s3 URI is resolved from the manifest's folder THEN the longest existing key suffix wins
    assert resolve_source_ref("s3://bucket/archive/clips/camera=c/date=d/x.mp4", manifest_dir) == clip


def test_relative_and_absolute_source_refs(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    assert resolve_source_ref("a.mp4", tmp_path) == tmp_path / "a.mp4"
    assert resolve_source_ref(str(tmp_path / "a.mp4"), tmp_path / "elsewhere") == tmp_path / "a.mp4"


@pytest.mark.parametrize(
    ("source_ref", "message"),
    [
        ("missing.mp4", "source-ref missing.mp4 not found"),
        ("s3://bucket/clips/missing.mp4", "source-ref s3://bucket/clips/missing.mp4 not found under"),
    ],
)
def test_missing_source_ref_is_named(tmp_path, source_ref, message):
    with pytest.raises(DataError, match=message):
        resolve_source_ref(source_ref, tmp_path)


def test_manifest_errors_are_clear(tmp_path):
    # GIVEN a missing path, a folder without manifests, an empty manifest, an invalid line
    empty = tmp_path / "manifest.jsonl"
    empty.write_text("\n")
    bad = tmp_path / "bad" / "manifest.jsonl"
    bad.parent.mkdir()
    bad.write_text('{"camera_id": "c"}\n')
    nothing = tmp_path / "nothing"
    nothing.mkdir()

    # THEN each names what is wrong
    with pytest.raises(DataError, match=f"manifest not found: {tmp_path / 'nope'}"):
        find_manifests(tmp_path / "nope")
    with pytest.raises(DataError, match=f"no manifest.jsonl under {nothing}"):
        find_manifests(nothing)
    with pytest.raises(DataError, match=f"manifest is empty: {empty}"):
        read_manifest(empty)
    with pytest.raises(DataError, match=f"{bad}:1: invalid manifest line: Field required"):
        read_manifest(bad)


def test_frame_folder_clip_is_read_in_name_order_with_event_labels(tmp_path):
    # GIVEN a clip folder of PNGs whose names sort differently from their creation order
    folder = tmp_path / "clip"
    folder.mkdir()
    for index, value in [(2, 200), (0, 0), (1, 100)]:
        Image.fromarray(np.full((32, 48, 3), value, np.uint8)).save(folder / f"frame_{index:03d}.png")
    clip = Clip(ManifestLine.model_validate({"source-ref": "clip", "events": [{"start_frame": 1, "end_frame": 1}]}),
                folder)

    # WHEN it is loaded at 16 x 32
    loaded = load_clip(clip, (16, 32))

    # THEN frames in name order, resized, frame 1 labelled as an event, the rest normal
    assert loaded.frames.shape == (3, 3, 16, 32)
    assert loaded.frames[:, 0, 0, 0].tolist() == [0, 100, 200]
    assert loaded.is_incident.tolist() == [False, True, False]
    assert loaded.is_false_alarm.tolist() == [False, False, False]
    assert (loaded.camera_id, loaded.fps) == ("default", 10.0)


def test_undecodable_clip_is_named(tmp_path):
    clip_path = tmp_path / "broken.mp4"
    clip_path.write_bytes(b"this is not a video")
    clip = Clip(ManifestLine.model_validate({"source-ref": "broken.mp4"}), clip_path)
    with pytest.raises(DataError, match=f"cannot decode clip {clip_path}"):
        load_clip(clip, (16, 32))


def _write_frames(folder, sizes):
    folder.mkdir(parents=True)
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(np.full((h, w, 3), 40 * i % 255, dtype=np.uint8)).save(folder / f"{i:03d}.png")


def test_clip_with_mixed_frame_sizes_is_a_clip_error(tmp_path):
    # GIVEN an image-folder clip whose third frame has another size
    _write_frames(tmp_path / "c", [(32, 24), (32, 24), (40, 24)])
    clip = Clip(line=ManifestLine.model_validate({"source-ref": "c"}), path=tmp_path / "c")

    # WHEN loaded THEN a ClipError names the clip, the frame and both sizes
    with pytest.raises(ClipError, match=r"changes frame size at frame 2: 32x24 -> 40x24"):
        load_clip(clip, (16, 16))


def test_short_and_broken_clips_are_skipped_with_a_reason_and_the_rest_load(tmp_path, caplog):
    # GIVEN a manifest with a good 6-frame clip, a 2-frame clip, an undecodable one, and labels
    _write_frames(tmp_path / "good", [(32, 24)] * 6)
    _write_frames(tmp_path / "short", [(32, 24)] * 2)
    (tmp_path / "bad.mp4").write_bytes(b"\0" * 64)
    (tmp_path / "manifest.jsonl").write_text(
        '{"source-ref": "good", "fps": 10, "events": [{"start_frame": 1, "end_frame": 2, "label": "bike"},'
        ' {"start_frame": 4, "end_frame": 5, "label": "false_alarm"}]}\n'
        '{"source-ref": "short"}\n{"source-ref": "bad.mp4"}\n'
    )

    # WHEN loaded for a model with a 3-frame window sampled at 5 fps (frames 2 apart at 10 fps)
    clips, skipped = load_clips(tmp_path, (16, 16), min_frames=3, sample_fps=5.0)

    # THEN the good clip loads with its labels, the others are skipped with their reasons (and logged)
    [good] = clips
    assert (good.frames.shape, good.fps, good.stride(5.0)) == ((6, 3, 16, 16), 10.0, 2)
    assert good.is_incident.tolist() == [False, True, True, False, False, False]
    assert good.is_false_alarm.tolist() == [False, False, False, False, True, True]
    assert [ref for ref, _ in skipped] == ["short", "bad.mp4"]
    assert "has 2 frames, fewer than the model's temporal window of 3 frames 2 apart (5 frames)" in skipped[0][1]
    assert skipped[1][1].startswith(f"cannot decode clip {tmp_path / 'bad.mp4'}")
    assert sum("skipping clip" in r.message for r in caplog.records) == 2


def test_no_usable_clip_is_a_data_error(tmp_path):
    _write_frames(tmp_path / "short", [(32, 24)])
    (tmp_path / "manifest.jsonl").write_text('{"source-ref": "short"}\n')
    with pytest.raises(DataError, match="no usable clip in .*has 1 frames, fewer than"):
        load_clips(tmp_path, (16, 16), min_frames=2)


def test_an_alert_clip_is_learnt_only_once_reviewed(tmp_path):
    # GIVEN a manifest with a normal clip, an alert clip nobody reviewed (whose file is not even here,
    # as on SageMaker, where the channel holds clips/ only) and an alert clip an operator dismissed
    for name in ("normal.mp4", "dismissed.mp4"):
        (tmp_path / name).write_bytes(b"")
    manifest = tmp_path / "manifest.jsonl"
    lines = [
        {"source-ref": "normal.mp4", "kind": "normal"},
        {"source-ref": "unreviewed.mp4", "kind": "alert", "alert_id": "a1"},
        {"source-ref": "dismissed.mp4", "kind": "alert", "alert_id": "a2",
         "events": [{"start_frame": 0, "end_frame": 9, "label": "false_alarm"}]},
    ]
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    # WHEN it is read THEN the unreviewed alert clip is left out, the reviewed one kept with its label
    clips = read_manifest(manifest)
    assert [(c.source_ref, [e.label for e in c.line.events]) for c in clips] == [
        ("normal.mp4", []), ("dismissed.mp4", ["false_alarm"]),
    ]


def test_a_clip_listed_twice_is_learnt_once_with_its_labels(tmp_path):
    # GIVEN one clip in two manifests (a demo's training channel, and its saved archive after a review)
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "b.mp4").write_bytes(b"")
    ref = "s3://vigil-archive/clips/camera=c/date=d/a.mp4"
    plain = Clip(line=ManifestLine(source_ref=ref), path=tmp_path / "a.mp4")
    labelled = Clip(line=ManifestLine.model_validate({
        "source-ref": ref, "events": [{"start_frame": 3, "end_frame": 5, "label": "false_alarm"}]}),
        path=tmp_path / "copy" / "a.mp4")
    other = Clip(line=ManifestLine(source_ref="b.mp4"), path=tmp_path / "b.mp4")
    # WHEN the clips are made unique THEN the clip appears once, in first-seen order, with the labelled line
    assert unique_clips([plain, other, labelled]) == [labelled, other]
    assert unique_clips([labelled, other, plain]) == [labelled, other]
