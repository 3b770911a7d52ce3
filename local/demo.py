"""`make demo`: the whole Vigil loop on one machine, no AWS account.

1. a moto server on 127.0.0.1 with the deployment's resources (S3, Kinesis `alerts`, SNS -> SQS, DynamoDB);
2. the first seconds of the camera archived to S3 as training clips (MP4 + manifest);
3. `python -m training` on those clips (downloaded as SageMaker downloads a training channel);
4. `python -m inference.serve` with the model (SageMaker's `/ping` + `/invocations` contract);
5. `python -m worker` on the rest of the video, paced as a live camera (`--speed`); on the bundled
   sample with one camera zone drawn (`DEMO_SCENE`: the floor around the standing table, an
   `intrusion` zone), so its alerts are `intrusion` in zone `table` or `scene_anomaly` elsewhere;
6. `python -m alert_lambda.local_esm`: the Lambda's Kinesis trigger, invoking `alert_lambda`;
7. every SNS notification printed as it arrives in the SQS subscription, with its latency;
8. the run's S3 objects and DynamoDB items saved to `out/demo/state/` (`local.state`), so the
   operator console can show its alerts after the moto server is gone: the demo ends by printing
   the command (`python -m local.console --from-demo out/demo`) and the URL of the first alert's page.

With `--model model.tar.gz` (`make demo MODEL=…`) steps 2 and 3 are skipped: that trained model is
served, and the worker analyses the video from its start.

Each stage is its own process running the production module; their logs go to `out/demo/logs/`.
Results: `out/demo/notifications.jsonl`, `out/demo/summary.json`, `out/demo/state/` and
`out/demo/console.json` (the console's login token and the first alert).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import httpx
from botocore.exceptions import ClientError

from alert_lambda.history import ALERT_ID_INDEX
from archive.archiver import ArchiveError, Archiver, download_prefixes
from contracts.alert import AlertRecord
from contracts.score_trace import score_trace_key
from local import SAMPLE_VIDEO
from local.ground_truth import EmptyStretches
from local.stack import LocalStack, PortInUseError, ensure_port_free, free_port
from local.state import CONSOLE_FILE, RUN_STATE_DIR, StateError, save_state
from worker.sources import unreachable_reason

logger = logging.getLogger(__name__)

ENDPOINT_NAME = "vigil-detector"
DEMO_TRAIN_EPOCHS = 30  # passes over the demo's few training windows (~60 optimiser steps, seconds)
CONSOLE_PORT = 8080  # python -m console's default
OUTSIDE_ZONES = "(outside zones)"
DEMO_SCENE = {
    "zones": [{
        "name": "table",
        "polygon": [[0.42, 0.6], [0.78, 0.6], [0.78, 1.0], [0.42, 1.0]],
        "event_type": "intrusion",
    }],
}
"""The sample room's scene: the floor around the standing table (feet there: an intrusion in zone
`table`); people elsewhere in the room raise `scene_anomaly` (`docs/scenes.md`)."""


class DemoError(RuntimeError):
    """A stage failed; the message says which and why."""


def say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Notification:
    alert: AlertRecord
    delivered_at: datetime
    latency_ms: float
    envelope: dict


@dataclass
class Inbox:
    """Reads SNS notifications from the SQS subscription and prints them as they arrive."""

    stack: LocalStack
    out_path: Path
    started: float = field(default_factory=time.monotonic)
    notifications: list[Notification] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Inbox:
        self.out_path.write_text("")
        self._thread = threading.Thread(target=self._run, name="inbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        sqs = self.stack.client("sqs")
        while not self._stop.is_set():
            response = sqs.receive_message(
                QueueUrl=self.stack.alert_inbox_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                AttributeNames=["SentTimestamp"],
            )
            for message in response.get("Messages", []):
                self._record(message)
                sqs.delete_message(QueueUrl=self.stack.alert_inbox_url, ReceiptHandle=message["ReceiptHandle"])

    def _record(self, message: dict) -> None:
        envelope = json.loads(message["Body"])
        alert = AlertRecord.model_validate_json(envelope["Message"])
        delivered_at = datetime.fromtimestamp(int(message["Attributes"]["SentTimestamp"]) / 1000, UTC)
        latency_ms = (delivered_at - alert.frame_at).total_seconds() * 1000
        self.notifications.append(Notification(alert, delivered_at, latency_ms, envelope))
        with self.out_path.open("a") as out:
            out.write(json.dumps(envelope) + "\n")
        say(
            f"  [+{time.monotonic() - self.started:6.1f}s] NOTIFICATION {alert.severity.value:<8} "
            f"{alert.camera_id}@{alert.site} {alert.event_type}{f' zone={alert.zone}' if alert.zone else ''} "
            f"score={alert.score:.3f} "
            f"(threshold {alert.threshold:.3f}) at media {alert.media_time_s or 0:.1f}s "
            f"regions={len(alert.regions)} latency={latency_ms:.0f} ms  subject={envelope.get('Subject')!r}"
        )


class Processes:
    """The stage processes, each with its log file; stopped in reverse order."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("w")
        proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, env=self.env)
        self.running.append((name, proc))
        return proc

    def run(self, name: str, args: list[str], timeout_s: float) -> None:
        proc = self.start(name, args)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise DemoError(f"{name} did not finish within {timeout_s:.0f} s{self.tail(name)}") from exc
        if code != 0:
            raise DemoError(f"{name} failed (exit {code}){self.tail(name)}")

    def check_alive(self, name: str, proc: subprocess.Popen) -> None:
        if proc.poll() is not None:
            raise DemoError(f"{name} exited early (exit {proc.returncode}){self.tail(name)}")

    def tail(self, name: str, lines: int = 15) -> str:
        text = (self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
        return f"; last lines of {self.log_dir / (name + '.log')}:\n    " + "\n    ".join(text)

    def stop_all(self) -> None:
        for _, proc in reversed(self.running):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in reversed(self.running):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def check_video(video: str) -> float | None:
    """Fail fast, with a readable message, on a missing or undecodable VIDEO. Returns its duration
    in seconds (None for a live URL)."""
    live = "://" in video
    if not live:
        path = Path(video)
        if not path.is_file():
            raise DemoError(f"VIDEO not found: {video}")
        if not os.access(path, os.R_OK):
            raise DemoError(f"VIDEO is not readable: {video}")
    try:
        with av.open(video, timeout=10.0 if live else None) as container:
            if not container.streams.video:
                raise DemoError(f"VIDEO has no video stream: {video}")
            stream = container.streams.video[0]
            if live or stream.duration is None:
                return None if live else float(container.duration or 0) / 1e6
            return float(stream.duration * stream.time_base)
    except (av.FFmpegError, OSError) as exc:
        why = unreachable_reason(exc) if live else None
        if why is not None:
            raise DemoError(f"VIDEO cannot be reached ({why}): {video}") from exc
        raise DemoError(f"VIDEO cannot be decoded ({exc.__class__.__name__}: {exc}): {video}") from exc


def read_model_config(model: Path) -> dict:
    """The `config.json` inside a `model.tar.gz` (`python -m training`'s artifact); a missing or
    unreadable file is a DemoError that says which."""
    if not model.is_file():
        raise DemoError(f"MODEL not found: {model} (train one with `make train DATA=<your videos>`)")
    try:
        with tarfile.open(model) as tar:
            member = tar.extractfile("config.json")
            if member is None:
                raise KeyError("config.json")
            return json.loads(member.read())
    except (tarfile.TarError, KeyError, OSError, ValueError) as exc:
        raise DemoError(f"MODEL is not a model.tar.gz with a config.json ({exc}): {model}") from exc


def wait_for_ping(url: str, proc_check, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        proc_check()
        try:
            if httpx.get(f"{url}/ping", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoError(f"inference server did not answer {url}/ping within {timeout_s:.0f} s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def run_demo(args: argparse.Namespace) -> dict:
    out_dir = Path(args.out)
    log_dir = out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    duration = check_video(args.video)
    trained = Path(args.model) if args.model else None
    config = read_model_config(trained) if trained else {}
    if trained is None and duration is not None and duration <= args.train_seconds + 2:
        raise DemoError(f"VIDEO is {duration:.1f} s long: need more than --train-seconds {args.train_seconds} + 2 s")
    inference_port = args.inference_port or free_port()
    ensure_port_free(inference_port)

    say("==> [1/8] moto server on 127.0.0.1 with the deployment's resources (S3, Kinesis, SNS->SQS, DynamoDB)")
    stack = LocalStack(port=args.moto_port).start()
    env = {**os.environ, **stack.env(), "PYTHONUNBUFFERED": "1",
           "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": f"http://127.0.0.1:{inference_port}"}
    procs = Processes(log_dir, env)
    inbox = Inbox(stack, out_dir / "notifications.jsonl")
    t0 = time.monotonic()
    try:
        say(f"    endpoint {stack.endpoint_url}; bucket {stack.names.bucket}; stream {stack.names.alert_stream}; "
            f"topic {stack.alert_topic_arn}")

        if trained is not None:
            say(f"==> [2/8] no archive: the model is given ({trained})")
            say(f"==> [3/8] no training: model {config.get('model_version')}, threshold {config.get('threshold')}")
            model = trained
        else:
            model, config = archive_and_train(args, stack, procs, out_dir)

        say(f"==> [4/8] serving it on http://127.0.0.1:{inference_port} (python -m inference.serve)")
        server = procs.start("inference", ["-m", "inference.serve", "--model", str(model),
                                           "--port", str(inference_port), "--host", "127.0.0.1"])
        wait_for_ping(f"http://127.0.0.1:{inference_port}", lambda: procs.check_alive("inference", server))

        say("==> [5/8] alert_lambda behind the local Kinesis event source mapping (python -m alert_lambda.local_esm)")
        esm = procs.start("alert_lambda", ["-m", "alert_lambda.local_esm", "--stream", stack.names.alert_stream,
                                           "--starting-position", "TRIM_HORIZON", "--batch-window-s", "0.2",
                                           # as Terraform sets the mapping: retry until it works, bisect
                                           "--max-retries", "-1", "--bisect-on-error"])
        inbox.start()

        speed = "as fast as possible" if args.speed == 0 else f"x{args.speed:g}"
        say(f"==> [6/8] worker on the rest of the video ({speed}); notifications print as they arrive:")
        worker_args = ["-m", "worker", "--camera-id", args.camera_id, "--site", args.site, "--source", args.video,
                       "--endpoint-name", ENDPOINT_NAME, "--speed", str(args.speed),
                       "--stats-out", str(out_dir / "worker_stats.json")]
        skip_s = 0.0 if trained is not None else args.train_seconds  # what training saw is not analysed
        if "://" not in args.video and skip_s:
            worker_args += ["--start-s", str(skip_s)]
        if args.duration_s:
            worker_args += ["--end-s", str(skip_s + args.duration_s)]
        if "://" not in args.video and Path(args.video).resolve() == SAMPLE_VIDEO:  # the zone is drawn for the sample's room
            scene_path = out_dir / "camera.json"
            scene_path.write_text(json.dumps({"scene": DEMO_SCENE}, indent=2) + "\n")
            worker_args += ["--config", str(scene_path)]
            say(f"    camera zone 'table' (intrusion) from {scene_path}")
        worker = procs.start("worker", worker_args)
        while worker.poll() is None:
            procs.check_alive("inference", server)
            procs.check_alive("alert_lambda", esm)
            time.sleep(0.2)
        if worker.returncode != 0:
            raise DemoError(f"worker failed (exit {worker.returncode}){procs.tail('worker')}")
        stats = json.loads((out_dir / "worker_stats.json").read_text())

        say("==> [7/8] waiting for the last notifications")
        deadline = time.monotonic() + 20
        while len(inbox.notifications) < stats.get("alerts_published", 0) and time.monotonic() < deadline:
            procs.check_alive("alert_lambda", esm)
            time.sleep(0.2)
        time.sleep(1.0)  # a duplicate would arrive now; there must be none

        say(f"==> [8/8] saving the run's S3 objects and DynamoDB items to {out_dir / RUN_STATE_DIR} for the console")
        console = save_for_console(stack, inbox.notifications, out_dir)
    finally:
        inbox.stop()
        procs.stop_all()
        stack.stop()
    summary = summarise(args, stats, inbox.notifications, config, time.monotonic() - t0, out_dir)
    summary["console"] = console
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def archive_and_train(args: argparse.Namespace, stack: LocalStack, procs: Processes,
                      out_dir: Path) -> tuple[Path, dict]:
    """Steps 2 and 3: the first seconds of the camera archived to S3, then `python -m training` on
    them as SageMaker would run it. Returns the artifact and its config."""
    say(f"==> [2/8] archiving the first {args.train_seconds:g} s of {args.video} to S3 as training clips")
    archiver = Archiver(stack.names.bucket, stack.client("s3"))
    media_epoch = datetime.now(UTC) - timedelta(seconds=args.train_seconds)
    clip_s = 5.0
    starts = [i * clip_s for i in range(int(args.train_seconds // clip_s) + 1) if i * clip_s < args.train_seconds]
    for start in starts:
        line = archiver.archive(args.video, args.camera_id, start, min(start + clip_s, args.train_seconds),
                                media_epoch=media_epoch)
        say(f"    {line.source_ref}")

    say("==> [3/8] training the model on the archived clips (python -m training)")
    channel = out_dir / "channel" / "train"
    files = download_prefixes(stack.names.bucket, [f"clips/camera={args.camera_id}/",
                                                   f"manifests/camera={args.camera_id}/"],
                              channel, stack.client("s3"))
    model_dir = out_dir / "model"
    train_args = ["-m", "training", "--train", str(channel), "--model-dir", str(model_dir), "--seed", "0"]
    # 5 s of footage: a fixed short run (the package's default step count is sized for hours of archive)
    train_args += ["--epochs", str(args.epochs or DEMO_TRAIN_EPOCHS)]
    t_train = time.monotonic()
    procs.run("training", train_args, timeout_s=300)
    config = json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").exists() else {}
    say(f"    {files} files in the channel; model {config.get('model_version')} trained in "
        f"{time.monotonic() - t_train:.0f} s, threshold {config.get('threshold')}")
    return model_dir / "model.tar.gz", config


def _exists(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


def _in_history(dynamodb, table: str, alert_id: str) -> bool:
    response = dynamodb.query(TableName=table, IndexName=ALERT_ID_INDEX, KeyConditionExpression="alert_id = :id",
                              ExpressionAttributeValues={":id": {"S": alert_id}}, Limit=1)
    return bool(response["Items"])


def save_for_console(stack: LocalStack, notes: list[Notification], out_dir: Path,
                     history_wait_s: float = 10.0) -> dict:
    """Save the stack's state to `out_dir/state`, write `out_dir/console.json` (a login token and
    the first alert), and check that the console will find each notified alert: its history row
    (alert_lambda writes it just after publishing), its snapshot, its clip and its score trace."""
    dynamodb, s3 = stack.client("dynamodb"), stack.client("s3")
    table = stack.names.alert_history_table
    deadline = time.monotonic() + history_wait_s
    missing = [n.alert.alert_id for n in notes]
    while True:
        missing = [alert_id for alert_id in missing if not _in_history(dynamodb, table, alert_id)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    alerts = sorted((n.alert for n in notes), key=lambda a: a.started_at)
    check = {
        "alerts": len(alerts),
        "in_history": len(alerts) - len(missing),
        "snapshots": sum(a.snapshot is not None and _exists(s3, a.snapshot.bucket, a.snapshot.key) for a in alerts),
        "clips": sum(a.clip is not None and _exists(s3, a.clip.bucket, a.clip.key) for a in alerts),
        "score_traces": sum(
            a.clip is not None and _exists(s3, a.clip.bucket, score_trace_key(a.clip.key)) for a in alerts
        ),
    }
    state = save_state(stack, out_dir / RUN_STATE_DIR)
    first = alerts[0].alert_id if alerts else None
    console_file = out_dir / CONSOLE_FILE
    console_file.unlink(missing_ok=True)
    fd = os.open(console_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it holds a login token
    with os.fdopen(fd, "w") as out:
        json.dump({"token": secrets.token_urlsafe(24), "first_alert_id": first}, out, indent=2)
    say(f"    {check['in_history']} of {check['alerts']} alerts in the history table, "
        f"{check['snapshots']} snapshots, {check['clips']} clips and {check['score_traces']} score traces "
        f"in s3://{stack.names.bucket}; "
        f"{sum(state.objects.values())} objects and {sum(state.items.values())} items saved")
    return {"state": str(state.folder), "first_alert_id": first, **check}


def console_lines(out_dir: Path) -> list[str]:
    """What to run to see this run's alerts in the console, and the first alert's page."""
    token_file = json.loads((out_dir / CONSOLE_FILE).read_text())
    folder = shlex.quote(str(out_dir))
    lines = [
        f"==> the console over this run's alerts: make console FROM_DEMO={folder}",
        f"    (or: python -m local.console --from-demo {folder})",
    ]
    base = f"http://127.0.0.1:{CONSOLE_PORT}"
    if token_file["first_alert_id"]:
        lines.append(f"    first alert: {base}/alerts/{token_file['first_alert_id']}?token={token_file['token']}")
    else:
        lines.append(f"    no alert in this run; the list: {base}/alerts?token={token_file['token']}")
    return lines


def by_zone(notes: list[Notification]) -> dict[str, dict[str, int]]:
    """Notifications per zone (`OUTSIDE_ZONES` for those in none), then per event type."""
    counts: dict[str, dict[str, int]] = {}
    for note in notes:
        zone = counts.setdefault(note.alert.zone or OUTSIDE_ZONES, {})
        zone[note.alert.event_type] = zone.get(note.alert.event_type, 0) + 1
    return counts


def summarise(args: argparse.Namespace, stats: dict, notes: list[Notification], config: dict,
              elapsed_s: float, out_dir: Path) -> dict:
    latencies = [n.latency_ms for n in notes]
    summary: dict = {
        "video": args.video,
        "camera_id": args.camera_id,
        "model_version": config.get("model_version"),
        "threshold": config.get("threshold"),
        "alerts_published": stats.get("alerts_published", 0),
        "notifications_delivered": len(notes),
        "frames_decoded": stats.get("frames_decoded", 0),
        "frames_analysed": stats.get("frames_analysed", 0),
        "worker": stats,
        "latency_ms": (
            {"p50": round(percentile(latencies, 50), 1), "p95": round(percentile(latencies, 95), 1),
             "max": round(max(latencies), 1)} if latencies else {"p50": None, "p95": None, "max": None}
        ),
        "notifications": [
            {"alert_id": n.alert.alert_id, "event_type": n.alert.event_type, "zone": n.alert.zone,
             "media_time_s": n.alert.media_time_s, "score": n.alert.score,
             "severity": n.alert.severity.value, "latency_ms": round(n.latency_ms, 1)} for n in notes
        ],
        "notifications_by_zone": by_zone(notes),
        "elapsed_s": round(elapsed_s, 1),
    }
    truth = EmptyStretches.for_video(args.video)
    if truth is not None:
        times = [n.alert.media_time_s for n in notes if n.alert.media_time_s is not None]
        summary["ground_truth"] = {
            "empty_ranges_s": [[a, None if b == float("inf") else b] for a, b in truth.ranges_s],
            "tolerance_s": truth.tolerance_s,
            "notifications_while_people_in_view": sum(truth.is_occupied_at(t) for t in times),
            "notifications_while_empty": sum(truth.is_empty_at(t) for t in times),
        }
    return summary


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(SAMPLE_VIDEO), help="video file or rtsp/http URL (default: the bundled sample)")
    parser.add_argument("--speed", type=float, default=4.0, help="playback rate of a file source; 1 = real time, 0 = as fast as possible (default 4)")
    parser.add_argument("--train-seconds", type=float, default=5.0, help="seconds at the start archived and learnt as normal (default 5)")
    parser.add_argument("--duration-s", type=float, default=None, help="seconds of video the worker analyses after them (default: to the end; needed for a live URL)")
    parser.add_argument("--epochs", type=int, default=None, help=f"training epochs (default: {DEMO_TRAIN_EPOCHS})")
    parser.add_argument("--model", default=None,
                        help="a trained model.tar.gz (make train's out/model/model.tar.gz) to serve instead of "
                             "archiving and training: the worker then analyses the video from its start "
                             "(default: train on the first --train-seconds)")
    parser.add_argument("--camera-id", default="lobby-1", help="camera id (default lobby-1)")
    parser.add_argument("--site", default="demo-hq", help="site (default demo-hq)")
    parser.add_argument("--moto-port", type=int, default=0, help="moto server port (default: a free one)")
    parser.add_argument("--inference-port", type=int, default=0, help="inference server port (default: a free one)")
    parser.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    if "://" in args.video and not args.duration_s:
        args.duration_s = 120.0
    try:
        summary = run_demo(args)
    except (DemoError, ArchiveError, PortInUseError, StateError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130
    latency = summary["latency_ms"]
    say(f"==> {summary['notifications_delivered']} notifications delivered for {summary['alerts_published']} alerts; "
        f"{summary['frames_decoded']} frames decoded, {summary['frames_analysed']} analysed; "
        f"latency p50 {latency['p50']} ms, p95 {latency['p95']} ms, max {latency['max']} ms")
    for zone, events in summary["notifications_by_zone"].items():
        say(f"    {zone}: " + ", ".join(f"{count} {event}" for event, count in sorted(events.items())))
    say(f"    {Path(args.out) / 'summary.json'} and {Path(args.out) / 'notifications.jsonl'}")
    truth = summary.get("ground_truth")
    ok = True
    if truth is not None:
        ok = truth["notifications_while_people_in_view"] >= 1 and truth["notifications_while_empty"] == 0
        say(f"    ground truth: {truth['notifications_while_people_in_view']} while people are in view, "
            f"{truth['notifications_while_empty']} while the room is empty -> {'OK' if ok else 'FAILED'}")
    for line in console_lines(Path(args.out)):
        say(line)
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
