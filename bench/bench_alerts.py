"""Benchmark of the alert path over the local loop: worker publisher -> Kinesis -> local event source
mapping + alert_lambda -> SNS -> SQS, all on a moto server on 127.0.0.1.

    python bench/bench_alerts.py [--alerts 500] [--rate 5] [--batch-window-s 0.2] [--lambda-batches 3]

Measures:
1. End-to-end latency, `detected_at` (set when the alert is published) -> the SQS message's
   `SentTimestamp` (SNS delivered it to the subscribed queue): p50 / p95 / max over `--alerts` alerts
   published at `--rate` per second (below what one invocation handles on moto, so the figure is
   the path's latency, not a backlog's) by the real `AlertPublisher` (durable spool in a temporary folder),
   with `python -m alert_lambda.local_esm` running as its own process, as in `make demo`.
   Baseline in the same run: the same alerts published straight to SNS (no Kinesis, no Lambda).
2. Alerts per second one Lambda invocation handles: `lambda_handler` in-process on batches of 100
   new alerts (idempotency on DynamoDB + SNS Publish per alert). Baseline: a bare loop of SNS
   `Publish` calls with the same messages (what the function adds on top: parsing, idempotency).
3. Faults (issue 15), each printing delivered / distinct / duplicates:
   - outage: `--outage-alerts` alerts on the stream while SNS answers 503 for `--outage-s` seconds,
     through the local event source mapping with the settings `infra/` deploys (retries until the
     record age, bisect on error); every alert must arrive once when SNS is back;
   - lost response: one invocation of 100 alerts where every `--lost-every`-th Publish reaches SNS but
     its response is lost; the function resends those flagged `possible_duplicate`, so duplicates
     equal lost responses and all are flagged.
   The outages default to 60 s and 10 min. `--faults-only` runs just these (a short smoke run:
   `--faults-only --outage-s 3 --outage-alerts 10`).

Every figure is against moto on this machine, not AWS; with other work on the CPU they are pessimistic.
Results go to bench/results/alerts.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from contracts.alert import AlertRecord, Severity, make_alert_id
from local.stack import LocalStack

logger = logging.getLogger(__name__)

RESULTS = REPO_ROOT / "bench" / "results" / "alerts.json"
LAMBDA_BATCH = 100


def make_alert(n: int, run: str, detected_at: datetime | None = None) -> AlertRecord:
    now = detected_at or datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    camera_id = f"cam-{n % 8:02d}"
    started_at = now - timedelta(seconds=1) + timedelta(microseconds=n)  # unique per alert
    return AlertRecord(
        alert_id=make_alert_id(camera_id, f"bench-{run}", started_at),
        camera_id=camera_id,
        site=f"site-{n % 3}",
        event_type="scene_anomaly",
        severity=[Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL][n % 4],
        score=1.5,
        threshold=1.0,
        started_at=started_at,
        frame_at=now - timedelta(milliseconds=200),
        detected_at=now,
        media_time_s=float(n),
        model_version="bench",
    )


def percentiles(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50_ms": round(q[49], 1),
        "p95_ms": round(q[94], 1),
        "max_ms": round(ordered[-1], 1),
        "mean_ms": round(statistics.fmean(ordered), 1),
    }


def drain_inbox(stack: LocalStack, expected: int, timeout_s: float) -> dict[str, int]:
    """alert_id -> SentTimestamp (ms) of every notification the inbox gets, until `expected` arrived or
    nothing arrived for `timeout_s`. A second notification for an alert is counted in `duplicates`."""
    sqs = stack.client("sqs")
    sent: dict[str, int] = {}
    duplicates = 0
    deadline = time.monotonic() + timeout_s
    while len(sent) < expected and time.monotonic() < deadline:
        batch = sqs.receive_message(
            QueueUrl=stack.alert_inbox_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["SentTimestamp"],
        ).get("Messages", [])
        if batch:
            deadline = time.monotonic() + timeout_s
        for message in batch:
            envelope = json.loads(message["Body"])
            alert_id = json.loads(envelope["Message"])["alert_id"]
            if alert_id in sent:
                duplicates += 1
            sent[alert_id] = int(message["Attributes"]["SentTimestamp"])
        if batch:
            sqs.delete_message_batch(
                QueueUrl=stack.alert_inbox_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
    sent["__duplicates__"] = duplicates
    return sent


def latency_of(alerts: list[AlertRecord], sent: dict[str, int]) -> list[float]:
    return [sent[a.alert_id] - a.detected_at.timestamp() * 1000.0 for a in alerts if a.alert_id in sent]


def publish_paced(publish: Any, n: int, rate: float, run: str) -> list[AlertRecord]:
    alerts = []
    started = time.monotonic()
    for i in range(n):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        alert = make_alert(i, run)
        publish(alert)
        alerts.append(alert)
    return alerts


def bench_loop(stack: LocalStack, args: argparse.Namespace) -> dict[str, Any]:
    from worker.publisher import AlertPublisher
    from worker.spool import AlertSpool

    env = {**os.environ, **stack.env(), "POWERTOOLS_LOG_LEVEL": "WARNING"}
    esm = subprocess.Popen(
        [sys.executable, "-m", "alert_lambda.local_esm", "--stream", stack.names.alert_stream,
         "--starting-position", "TRIM_HORIZON", "--batch-window-s", str(args.batch_window_s),
         "--poll-interval-s", "0.05", "--log-level", "WARNING"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(0.5)  # TRIM_HORIZON: a record put before the mapping's first poll is still read
        if esm.poll() is not None:
            raise RuntimeError(f"local_esm exited: {esm.stderr.read() if esm.stderr else ''}")
        with tempfile.TemporaryDirectory() as spool_dir:
            publisher = AlertPublisher(
                stack.names.alert_stream, spool=AlertSpool(Path(spool_dir), max_alerts=10_000)
            )
            received: dict[str, int] = {}
            reader = threading.Thread(
                target=lambda: received.update(drain_inbox(stack, args.alerts, timeout_s=30)), daemon=True
            )
            reader.start()
            started = time.monotonic()
            alerts = publish_paced(publisher.publish, args.alerts, args.rate, run=f"loop-{time.time_ns()}")
            publisher.close(timeout_s=30)
            reader.join()
            elapsed = time.monotonic() - started
        duplicates = received.pop("__duplicates__", 0)
        return {
            **percentiles(latency_of(alerts, received)),
            "published": len(alerts),
            "delivered": sum(1 for a in alerts if a.alert_id in received),
            "duplicates": duplicates,
            "rate_per_s": args.rate,
            "batch_window_s": args.batch_window_s,
            "elapsed_s": round(elapsed, 1),
            "putrecords_calls": publisher.calls,
        }
    finally:
        esm.terminate()
        try:
            esm.wait(timeout=10)
        except subprocess.TimeoutExpired:
            esm.kill()


def bench_direct_sns(stack: LocalStack, n: int, rate: float) -> dict[str, Any]:
    """Baseline: each alert published straight to SNS the moment it is made."""
    from alert_lambda.messages import Links, build_notification

    sns = stack.client("sns")
    received: dict[str, int] = {}
    reader = threading.Thread(
        target=lambda: received.update(drain_inbox(stack, n, timeout_s=30)), daemon=True
    )
    reader.start()

    def publish(alert: AlertRecord) -> None:
        sns.publish(
            **build_notification(alert, Links(expires_in_s=3600)).publish_kwargs(stack.alert_topic_arn)
        )

    alerts = publish_paced(publish, n, rate, run=f"direct-{time.time_ns()}")
    reader.join()
    received.pop("__duplicates__", 0)
    return percentiles(latency_of(alerts, received))


class _Context:
    function_name = "vigil-alert-lambda"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:vigil-alert-lambda"
    memory_limit_in_mb = 256
    aws_request_id = "bench"
    log_group_name = "/aws/lambda/vigil-alert-lambda"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def lambda_event(alerts: list[AlertRecord]) -> dict[str, Any]:
    from alert_lambda.kinesis_event import kinesis_event

    records = [
        {
            "Data": alert.model_dump_json().encode(),
            "PartitionKey": alert.camera_id,
            "SequenceNumber": str(49659221465937419213870412345678901234567890123456789010 + 16 * i),
            "ApproximateArrivalTimestamp": time.time(),
        }
        for i, alert in enumerate(alerts)
    ]
    return kinesis_event(
        records,
        shard_id="shardId-000000000000",
        stream_arn="arn:aws:kinesis:us-east-1:123456789012:stream/alerts",
        invoke_identity_arn="arn:aws:iam::123456789012:role/vigil-alert-lambda",
    )


def bench_lambda(stack: LocalStack, batches: int) -> dict[str, Any]:
    """Alerts per second inside one invocation of `lambda_handler` on 100 new alerts, and the bare
    SNS Publish loop as baseline."""
    os.environ.update(
        {**stack.env(), "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
    )
    from alert_lambda import handler
    from alert_lambda.messages import Links, build_notification

    durations = []
    for b in range(batches):
        alerts = [make_alert(i, f"lambda-{b}-{time.time_ns()}") for i in range(LAMBDA_BATCH)]
        event = lambda_event(alerts)
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the function's EMF lines
            response = handler.lambda_handler(event, _Context())
        durations.append(time.perf_counter() - started)
        if response != {"batchItemFailures": []}:
            raise RuntimeError(f"invocation failed: {response}")
    sns = stack.client("sns")
    alerts = [make_alert(i, f"bare-{time.time_ns()}") for i in range(LAMBDA_BATCH)]
    started = time.perf_counter()
    for alert in alerts:
        sns.publish(
            **build_notification(alert, Links(expires_in_s=3600)).publish_kwargs(stack.alert_topic_arn)
        )
    bare_s = time.perf_counter() - started
    per_invocation = [LAMBDA_BATCH / d for d in durations]
    return {
        "batch_size": LAMBDA_BATCH,
        "invocations": batches,
        "alerts_per_s_median": round(statistics.median(per_invocation), 1),
        "alerts_per_s_min": round(min(per_invocation), 1),
        "invocation_ms_median": round(statistics.median(durations) * 1000, 1),
        "baseline_bare_sns_publish_per_s": round(LAMBDA_BATCH / bare_s, 1),
    }


class SnsFaults:
    """Faults on the function's own SNS client, at its HTTP layer: `down` answers 503; every
    `lose_every`-th request reaches SNS (it publishes) and its response is lost (read timeout)."""

    UNAVAILABLE = (
        b'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Receiver</Type>'
        b"<Code>ServiceUnavailable</Code><Message>Service is unavailable</Message></Error>"
        b"<RequestId>bench</RequestId></ErrorResponse>"
    )

    def __init__(self) -> None:
        from alert_lambda import clients
        from alert_lambda.settings import Settings

        self.down = False
        self.lose_every = 0
        self.requests = 0
        self.lost = 0
        self.events = clients.client("sns", Settings.from_env()).meta.events
        self.events.register("before-send.sns.Publish", self._on_send, unique_id="bench-sns-faults")

    def close(self) -> None:
        self.events.unregister("before-send.sns.Publish", unique_id="bench-sns-faults")

    def _on_send(self, request: Any, **_: Any) -> Any:
        import urllib.request

        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import ReadTimeoutError

        self.requests += 1
        if self.down:
            body = io.BytesIO(self.UNAVAILABLE)
            raw = type("Raw", (), {"stream": lambda self, *a, **k: iter([body.getvalue()])})()
            return AWSResponse(request.url, 503, {"Content-Type": "text/xml"}, raw)
        if self.lose_every and self.requests % self.lose_every == 0:
            self.lost += 1
            forwarded = urllib.request.Request(
                request.url, data=request.body if isinstance(request.body, bytes) else request.body.encode(),
                headers=dict(request.headers.items()), method="POST",
            )  # fmt: skip
            urllib.request.urlopen(forwarded, timeout=10).read()  # SNS publishes ...
            raise ReadTimeoutError(endpoint_url=request.url)  # ... and the answer is lost
        return None


def count_inbox(stack: LocalStack, quiet_s: float = 2.0) -> dict[str, int]:
    """delivered / distinct / duplicates / flagged (possible_duplicate) over what the inbox holds."""
    sqs = stack.client("sqs")
    seen: dict[str, int] = {}
    flagged = 0
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_s:
        batch = sqs.receive_message(QueueUrl=stack.alert_inbox_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        if batch:
            quiet_since = time.monotonic()
            sqs.delete_message_batch(
                QueueUrl=stack.alert_inbox_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        for message in batch:
            envelope = json.loads(message["Body"])
            alert_id = json.loads(envelope["Message"])["alert_id"]
            seen[alert_id] = seen.get(alert_id, 0) + 1
            flagged += "possible_duplicate" in envelope.get("MessageAttributes", {})
    delivered = sum(seen.values())
    return {"delivered": delivered, "distinct": len(seen), "duplicates": delivered - len(seen), "flagged": flagged}


def terraform_event_source() -> tuple[int, int]:
    """(maximum_retry_attempts, maximum_record_age_s) as infra/modules/alerts deploys them by default."""
    text = (REPO_ROOT / "infra" / "modules" / "alerts" / "variables.tf").read_text()
    import re

    retries = int(re.search(r"maximum_retry_attempts\s*=\s*optional\(number,\s*(-?\d+)\)", text).group(1))
    age = int(re.search(r"maximum_record_age_s\s*=\s*optional\(number,\s*(-?\d+)\)", text).group(1))
    return retries, age


def bench_outage(stack: LocalStack, n: int, outage_s: float) -> dict[str, Any]:
    """n alerts on the stream while SNS is down for `outage_s`, through the local mapping with the
    Terraform settings; what the inbox got once SNS was back."""
    from alert_lambda.local_esm import EventSourceMapping, MappingConfig

    retries, age = terraform_event_source()
    config = MappingConfig(
        stream=stack.names.alert_stream, batch_size=100, batch_window_s=0.2, starting_position="LATEST",
        max_retries=retries, maximum_record_age_s=age, bisect_on_error=True, retry_backoff_s=0.2,
    )  # fmt: skip
    faults = SnsFaults()
    mapping = EventSourceMapping(config).start()
    kinesis = stack.client("kinesis")
    run = f"outage-{time.time_ns()}"
    faults.down = True
    started = time.monotonic()
    for i in range(n):
        alert = make_alert(i, run)
        kinesis.put_record(StreamName=config.stream, Data=alert.model_dump_json().encode(), PartitionKey=alert.camera_id)
    stop = threading.Event()
    runner = threading.Thread(target=mapping.run, args=(stop,), daemon=True)
    with contextlib.redirect_stdout(io.StringIO()):
        runner.start()
        time.sleep(max(0.0, outage_s - (time.monotonic() - started)))
        faults.down = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not mapping.idle or mapping.stats.records_succeeded < n):
            time.sleep(0.1)
        stop.set()
        runner.join()
    faults.close()
    counts = count_inbox(stack)
    return {
        "alerts": n,
        "outage_s": outage_s,
        "max_retries": retries,
        "maximum_record_age_s": age,
        **counts,
        "discarded": mapping.stats.records_discarded,
        "publish_requests": faults.requests,
        "recovered_after_s": round(time.monotonic() - started, 1),
    }


def bench_lost_response(stack: LocalStack, lose_every: int) -> dict[str, Any]:
    """One invocation of 100 new alerts, every `lose_every`-th Publish response lost."""
    from alert_lambda import handler

    faults = SnsFaults()
    faults.lose_every = lose_every
    alerts = [make_alert(i, f"lost-{time.time_ns()}") for i in range(LAMBDA_BATCH)]
    with contextlib.redirect_stdout(io.StringIO()):
        response = handler.lambda_handler(lambda_event(alerts), _Context())
    faults.close()
    counts = count_inbox(stack)
    return {
        "alerts": LAMBDA_BATCH,
        "lose_every": lose_every,
        "lost_responses": faults.lost,
        **counts,
        "failed_records": len(response.get("batchItemFailures", [])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/bench_alerts.py", description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=500, help="alerts through the loop (default 500)")
    parser.add_argument("--rate", type=float, default=5.0, help="alerts published per second (default 5)")
    parser.add_argument(
        "--batch-window-s",
        type=float,
        default=0.2,
        help="the mapping's batching window (default 0.2, as the demo)",
    )
    parser.add_argument("--lambda-batches", type=int, default=3, help="invocations of 100 alerts (default 3)")
    parser.add_argument("--outage-s", type=float, nargs="+", default=[60.0, 600.0],
                        help="SNS outages, one run each, s (default: 60 600, issue 15's minute and ten minutes)")
    parser.add_argument("--outage-alerts", type=int, default=20, help="alerts in the outage run (default 20)")
    parser.add_argument("--lost-every", type=int, default=10, help="lose every n-th Publish response (default 10)")
    parser.add_argument("--faults-only", action="store_true", help="run only the outage and lost-response runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON (default {RESULTS})")
    args = parser.parse_args(argv)
    if args.faults_only:
        return faults_main(args)
    if args.alerts < 100 or args.rate <= 0 or args.lambda_batches < 1:
        print("error: --alerts must be >= 100, --rate > 0, --lambda-batches >= 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with LocalStack() as stack:
        os.environ.update(stack.env())  # the worker's boto3 clients read the endpoint and region from here
        print(f"==> direct SNS -> SQS baseline (100 alerts at {args.rate:g}/s)", flush=True)
        direct = bench_direct_sns(stack, 100, args.rate)
        print(f"==> local loop: {args.alerts} alerts at {args.rate:g}/s, publisher -> Kinesis -> local_esm -> "
              f"alert_lambda -> SNS -> SQS", flush=True)  # fmt: skip
        loop = bench_loop(stack, args)
        print(f"==> one Lambda invocation: {args.lambda_batches} x {LAMBDA_BATCH} alerts", flush=True)
        lam = bench_lambda(stack, args.lambda_batches)
        faults = print_faults(stack, args)
    results = {
        "what": "alert path over the local loop (moto server on 127.0.0.1, shared 2-core machine)",
        "end_to_end_detected_at_to_sqs": loop,
        "baseline_direct_sns_to_sqs": direct,
        "ratio_p50_loop_vs_direct": round(loop["p50_ms"] / max(direct["p50_ms"], 0.1), 1),
        "lambda_invocation": lam,
        "ratio_lambda_vs_bare_publish": round(
            lam["alerts_per_s_median"] / lam["baseline_bare_sns_publish_per_s"], 2
        ),
        "faults": faults,
        "command": "make bench-alerts",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"end to end (detected_at -> SQS), {loop['delivered']}/{loop['published']} delivered, "
        f"{loop['duplicates']} duplicates: p50 {loop['p50_ms']} ms, p95 {loop['p95_ms']} ms, max {loop['max_ms']} ms"
    )
    print(
        f"baseline direct SNS -> SQS: p50 {direct['p50_ms']} ms, p95 {direct['p95_ms']} ms "
        f"(loop/direct p50 x{results['ratio_p50_loop_vs_direct']})"
    )
    print(
        f"one invocation: {lam['alerts_per_s_median']} alerts/s median ({lam['invocation_ms_median']} ms per "
        f"{LAMBDA_BATCH}); bare SNS Publish loop {lam['baseline_bare_sns_publish_per_s']}/s "
        f"(ratio {results['ratio_lambda_vs_bare_publish']})"
    )
    print(f"==> results in {args.out}")
    ok = loop["delivered"] == loop["published"] and loop["duplicates"] == 0 and faults_ok(faults)
    return 0 if ok else 1


def faults_main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    with LocalStack() as stack:
        os.environ.update(
            {**stack.env(), "POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
        )
        faults = print_faults(stack, args)
    out = args.out.with_name(args.out.stem + "_faults.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**faults, "command": "make bench-alerts ARGS=--faults-only"}, indent=2) + "\n")
    print(f"==> results in {out}")
    return 0 if faults_ok(faults) else 1


def print_faults(stack: LocalStack, args: argparse.Namespace) -> dict[str, Any]:
    outages = []
    for outage_s in args.outage_s:
        print(f"==> outage: {args.outage_alerts} alerts, SNS down {outage_s:g} s, Terraform mapping settings", flush=True)
        outage = bench_outage(stack, args.outage_alerts, outage_s)
        outages.append(outage)
        print(
            f"outage {outage_s:g} s: delivered {outage['delivered']}, distinct {outage['distinct']}/{outage['alerts']}, "
            f"duplicates {outage['duplicates']}, discarded {outage['discarded']} (all in {outage['recovered_after_s']} s)"
        )
    print(f"==> lost response: {LAMBDA_BATCH} alerts, every {args.lost_every}th Publish response lost", flush=True)
    lost = bench_lost_response(stack, args.lost_every)
    print(
        f"lost response: delivered {lost['delivered']}, distinct {lost['distinct']}/{lost['alerts']}, duplicates "
        f"{lost['duplicates']} ({lost['flagged']} flagged possible_duplicate; {lost['lost_responses']} responses lost)"
    )
    return {"outages": outages, "lost_response": lost}


def faults_ok(faults: dict[str, Any]) -> bool:
    lost = faults["lost_response"]
    return (
        all(o["distinct"] == o["alerts"] and o["duplicates"] == 0 for o in faults["outages"])
        and lost["distinct"] == lost["alerts"] and lost["duplicates"] == lost["flagged"] == lost["lost_responses"]
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
