"""Operator feedback: mark an alert as a true incident or a false alarm, for the next training run.

    python -m archive.feedback ALERT_ID --true-incident|--false-alarm [--camera CAM] [--note TEXT]

1. Finds the alert: its snapshot (`snapshots/camera=<id>/date=<d>/<alert_id>.jpg`) and/or its clip's
   manifest line(s) (`alert_id` in `manifests/camera=<id>/...`); an id found in neither is an error.
2. Writes `s3://<bucket>/feedback/camera=<id>/<alert_id>.json` (`FeedbackLabel`: alert_id,
   camera_id, label, operator, labelled_at, note). A console writes the same object.
3. Sets `events` on the alert clip's manifest line(s): `anomaly` (true incident) or `false_alarm`
   (false alarm) from the event start to the end of the clip. If the clip is not archived yet, the
   archiver applies the feedback object when it archives it.

Idempotent: the same verdict again changes nothing (the first `labelled_at` is kept); a different
verdict replaces the old one.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from archive.errors import ArchiveError
from archive.keys import (
    ENV_ARCHIVE_BUCKET,
    SNAPSHOTS_PREFIX,
    camera_manifests_prefix,
    feedback_key,
    manifest_key,
)
from archive.labels import EVENT_AT_FIELD, FeedbackLabel, Verdict, events_for
from archive.local_cut import ClipProbe, probe_clip
from archive.store import ArchiveStore
from contracts.manifest import ManifestLine

logger = logging.getLogger(__name__)


class FeedbackError(RuntimeError):
    """Feedback could not be recorded (unknown alert id, unreadable clip...)."""


@dataclass(frozen=True)
class AlertLocation:
    camera_id: str
    snapshot_key: str | None
    manifest_keys: tuple[str, ...]  # manifests holding a line of the alert's clip


@dataclass(frozen=True)
class FeedbackResult:
    label: FeedbackLabel
    feedback_uri: str
    lines: tuple[ManifestLine, ...]  # the alert clip's manifest lines, labelled (none: not archived yet)


def _camera_of(key: str) -> str:
    part = next(p for p in key.split("/") if p.startswith("camera="))
    return part.removeprefix("camera=")


def locate_alert(store: ArchiveStore, alert_id: str, camera_id: str | None = None) -> AlertLocation:
    """Where the alert's snapshot and clip lines are; `FeedbackError` if the id is unknown."""
    snapshot_prefix = f"{SNAPSHOTS_PREFIX}camera={camera_id}/" if camera_id else SNAPSHOTS_PREFIX
    snapshot = next((k for k in store.list_keys(snapshot_prefix) if k.endswith(f"/{alert_id}.jpg")), None)
    camera = _camera_of(snapshot) if snapshot else camera_id
    if snapshot:
        # The clip starts up to the pre-roll before the snapshot's frame: that day or the day before.
        day = datetime.strptime(snapshot.split("date=")[1][:10], "%Y-%m-%d").replace(tzinfo=UTC)
        candidates = [manifest_key(camera, day), manifest_key(camera, day - timedelta(days=1))]
    else:
        candidates = store.list_keys(camera_manifests_prefix(camera_id))
    holding = tuple(
        key for key in candidates if any(line.alert_id == alert_id for line in store.read_manifest(key)[0])
    )
    if snapshot is None and not holding:
        where = f"camera {camera_id}" if camera_id else "any camera"
        raise FeedbackError(
            f"unknown alert id {alert_id}: no snapshot and no alert clip of it for {where} in s3://{store.bucket}"
        )
    return AlertLocation(camera_id=camera or _camera_of(holding[0]), snapshot_key=snapshot, manifest_keys=holding)


def _probe_source_ref(store: ArchiveStore, source_ref: str, cache: dict[str, ClipProbe]) -> ClipProbe:
    if source_ref not in cache:
        bucket, _, key = source_ref.removeprefix("s3://").partition("/")
        if bucket != store.bucket:
            raise FeedbackError(f"clip {source_ref} is not in bucket {store.bucket}")
        with tempfile.TemporaryDirectory(prefix="vigil-feedback-") as tmp:
            try:
                cache[source_ref] = probe_clip(store.download(key, Path(tmp) / "clip.mp4"), source_ref)
            except (ArchiveError, ClientError) as exc:
                raise FeedbackError(f"cannot read alert clip {source_ref}: {exc}") from exc
    return cache[source_ref]


def label_lines(store: ArchiveStore, location: AlertLocation, label: FeedbackLabel) -> list[ManifestLine]:
    """Set the events of the alert's clip lines from `label`; returns those lines."""
    cache: dict[str, ClipProbe] = {}
    labelled: list[ManifestLine] = []

    def change(lines: list[ManifestLine]) -> list[ManifestLine]:
        out = []
        for line in lines:
            if line.alert_id == label.alert_id and line.start is not None:
                event_at = (line.model_extra or {}).get(EVENT_AT_FIELD)
                at = datetime.fromisoformat(event_at) if event_at else None
                probe = _probe_source_ref(store, line.source_ref, cache)
                line = line.model_copy(update={"events": events_for(label, probe, line.start, at)})
                labelled.append(line)
            out.append(line)
        return out

    for key in location.manifest_keys:
        store.change_manifest(key, change)
    return list({line.source_ref: line for line in labelled}.values())


def give_feedback(
    store: ArchiveStore,
    alert_id: str,
    verdict: Verdict,
    *,
    operator: str,
    camera_id: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> FeedbackResult:
    """Record the verdict (feedback object, then the clip's manifest lines). Idempotent."""
    location = locate_alert(store, alert_id, camera_id)
    key = feedback_key(location.camera_id, alert_id)
    label = FeedbackLabel(alert_id=alert_id, camera_id=location.camera_id, label=verdict, operator=operator,
                          labelled_at=now or datetime.now(UTC), note=note)
    existing = store.get_json(key)
    if existing is not None:
        old = FeedbackLabel.model_validate(existing)
        if (old.label, old.operator, old.note) == (label.label, label.operator, label.note):
            label = old
    if existing is None or label.model_dump(mode="json") != existing:
        store.put_json(key, label.model_dump_json())
    lines = label_lines(store, location, label)
    logger.info("feedback camera=%s alert_id=%s label=%s clip_lines=%d", location.camera_id, alert_id,
                verdict, len(lines))
    return FeedbackResult(label=label, feedback_uri=store.uri(key), lines=tuple(lines))


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m archive.feedback", description=__doc__.splitlines()[0])
    parser.add_argument("alert_id", metavar="ALERT_ID", help="the alert's id (alert_id in the notification)")
    verdict = parser.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--true-incident", dest="verdict", action="store_const", const="true_incident",
                         help="the alert was real: its clip becomes labelled anomaly frames")
    verdict.add_argument("--false-alarm", dest="verdict", action="store_const", const="false_alarm",
                         help="nothing happened: its clip is labelled false_alarm (normal footage)")
    parser.add_argument("--camera", default=None, help="the alert's camera id (default: found from the alert id)")
    parser.add_argument("--note", default=None, help="free text kept with the label (default none)")
    parser.add_argument("--operator", default=None, help="who decides (default: the login name)")
    parser.add_argument("--bucket", default=os.environ.get(ENV_ARCHIVE_BUCKET), help=f"default ${ENV_ARCHIVE_BUCKET}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not args.bucket:
        parser.error(f"no bucket: pass --bucket or set {ENV_ARCHIVE_BUCKET}")
    try:
        result = give_feedback(ArchiveStore(args.bucket), args.alert_id, args.verdict,
                               operator=args.operator or getpass.getuser(), camera_id=args.camera, note=args.note)
    except (FeedbackError, ArchiveError) as exc:
        print(f"feedback: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"feedback: AWS call failed: {exc}", file=sys.stderr)
        return 2
    clips = [line.source_ref for line in result.lines]
    print(f"{result.label.label} recorded in {result.feedback_uri}; "
          + (f"labelled clip(s): {', '.join(clips)}" if clips else "clip not archived yet (labelled when it is)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
