"""Manifest reading and source-ref resolution, on real files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from contracts.manifest import ManifestLine
from training.data import Clip, DataError, find_manifests, load_clip, read_manifest, resolve_source_ref


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
    assert loaded.is_event.tolist() == [False, True, False]
    assert torch.equal(loaded.normal[:, 0, 0, 0], torch.tensor([0, 200], dtype=torch.uint8))
    assert loaded.camera_id == "default"


def test_undecodable_clip_is_named(tmp_path):
    clip_path = tmp_path / "broken.mp4"
    clip_path.write_bytes(b"this is not a video")
    clip = Clip(ManifestLine.model_validate({"source-ref": "broken.mp4"}), clip_path)
    with pytest.raises(DataError, match=f"cannot decode clip {clip_path}"):
        load_clip(clip, (16, 32))
