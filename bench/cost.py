"""Cost per camera-month of a Vigil deployment (issue 16): `make cost CAMERAS=1000 BITRATE_MBPS=2 FPS=1`.

Prices and deployment choices come from one file of named, dated inputs (bench/prices.json); the work
per camera from the benchmarks: the worker's CPU seconds per video second at 1 analysed frame/s
(bench/results/worker.json, 720p H.264 with 1 s GOPs) and the inference server's items/s
(bench/results/inference.json). Everything is per camera per month (730 h); a fleet-wide fixed cost
(endpoint hours, NAT gateway, console, alert stream) is divided by the number of cameras.

What it does not know: the footage's real bitrate and motion (alerts and clips per day are inputs), the
free tier, savings plans, and any price you have not checked. The benchmark machines were shared 2-core
CPUs: the endpoint's throughput per instance is scaled from them by vCPU count, which is pessimistic for
a GPU instance."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRICES = ROOT / "bench" / "prices.json"
WORKER_BENCH = ROOT / "bench" / "results" / "worker.json"
INFERENCE_BENCH = ROOT / "bench" / "results" / "inference.json"
GB = 1e9  # AWS bills decimal gigabytes for data; GiB for memory (Fargate GB-hours are of the task's GiB)


@dataclass(frozen=True)
class Bench:
    worker_cpu_s_per_video_s: float  # at 1 analysed frame/s, keyframes only
    worker_keyframe_rate: float  # keyframes per second of the benchmark footage (1 / GOP)
    worker_all_frames_cpu_s_per_video_s: float  # decoding every frame (needed above the keyframe rate)
    worker_cpu_s_per_analysed_frame: float  # what analysing one frame adds to decoding it
    inference_items_per_s: float  # best measured throughput of one server
    inference_cpus: int  # the cores that throughput was measured on


@dataclass(frozen=True)
class Line:
    component: str
    per_camera: float  # USD per camera-month
    basis: str


def load_bench(worker_path: Path = WORKER_BENCH, inference_path: Path = INFERENCE_BENCH) -> Bench:
    worker = json.loads(worker_path.read_text(encoding="utf-8"))["inputs"]["camera"]
    inference = json.loads(inference_path.read_text(encoding="utf-8"))
    seconds = worker["input"]["seconds"]
    frames_analysed = worker["worker_1fps"]["stats"]["frames_analysed"]
    analysis_cpu_s = max(0.0, worker["worker_1fps"]["cpu_s"] - worker["decode_keyframes_only"]["cpu_s"])
    best = max(run["items_per_s"] for run in inference["invocations"].values())
    return Bench(
        worker_cpu_s_per_video_s=worker["worker_1fps"]["cpu_s_per_video_s"],
        worker_keyframe_rate=1.0 / worker["input"]["gop_s"],
        worker_all_frames_cpu_s_per_video_s=worker["decode_all_frames"]["wall_s"] / seconds,
        worker_cpu_s_per_analysed_frame=analysis_cpu_s / frames_analysed,
        inference_items_per_s=best,
        inference_cpus=inference["machine"]["cpus"],
    )


def load_prices(path: Path = PRICES) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def worker_vcpu_per_camera(bench: Bench, fps: float) -> float:
    """CPU seconds per second of video for one camera analysed at `fps` frames/s."""
    if fps <= bench.worker_keyframe_rate:  # keyframes only: fewer of them decoded and analysed
        return bench.worker_cpu_s_per_video_s * fps / bench.worker_keyframe_rate
    # above the keyframe rate every frame must be decoded
    return bench.worker_all_frames_cpu_s_per_video_s + fps * bench.worker_cpu_s_per_analysed_frame


def s3_tier_gb(monthly_gb: float, transition_days: float, expiration_days: float) -> tuple[float, float]:
    """Steady-state GB in STANDARD and in the colder class for objects written at `monthly_gb` a month."""
    per_day = monthly_gb / 30.4
    standard_days = min(transition_days, expiration_days)
    return per_day * standard_days, per_day * max(0.0, expiration_days - standard_days)


def cost_lines(cameras: int, bitrate_mbps: float, fps: float, prices: dict, bench: Bench) -> list[Line]:
    if cameras < 1 or bitrate_mbps <= 0 or fps <= 0:
        raise ValueError("cameras >= 1, bitrate_mbps > 0 and fps > 0")
    p, d, hours = prices["prices"], prices["deployment"], prices["hours_per_month"]
    seconds = hours * 3600
    video_gb = bitrate_mbps * 1e6 / 8 * seconds / GB  # one camera's footage a month
    lines: list[Line] = []

    def add(component: str, per_camera: float, basis: str) -> None:
        lines.append(Line(component, per_camera, basis))

    # --- Kinesis Video Streams -----------------------------------------------------------------------
    add("KVS ingest", video_gb * p["kvs_ingest_per_gb"], f"{video_gb:.0f} GB/month at {bitrate_mbps} Mb/s")
    stored_gb = bitrate_mbps * 1e6 / 8 * 3600 * d["kvs_retention_hours"] / GB
    add("KVS storage", stored_gb * p["kvs_storage_per_gb_month"], f"{stored_gb:.1f} GB kept ({d['kvs_retention_hours']} h)")
    consumed_gb = video_gb * d["kvs_consumers"]
    add("KVS consumption (GetMedia)", consumed_gb * p["kvs_consumption_per_gb"],
        f"the worker reads the whole stream ({d['kvs_consumers']} consumer)")
    # --- network: the worker's GetMedia crosses the kinesisvideo interface endpoint ----------------------
    add("VPC endpoint data processed", consumed_gb * p["vpc_interface_endpoint_per_gb"],
        "GetMedia bytes through the kinesisvideo interface endpoint")
    endpoint_hours = d["interface_endpoints"] * d["az_count"] * hours * p["vpc_interface_endpoint_per_az_hour"]
    add("VPC interface endpoints (hours)", endpoint_hours / cameras,
        f"{d['interface_endpoints']} endpoints x {d['az_count']} AZs, fleet-wide")
    egress = {
        "nat_gateway": hours * p["nat_gateway_hour"],
        "transit_gateway": hours * p["transit_gateway_attachment_hour"],
        "none": 0.0,
    }[d["egress_mode"]]
    add("Console egress", egress / cameras, f"egress.mode {d['egress_mode']}, fleet-wide (sign-in traffic only)")
    add("Data transfer in (cameras -> KVS)", video_gb * p["data_transfer_in_per_gb"], "inbound is free")
    # --- compute ------------------------------------------------------------------------------------------
    vcpu = worker_vcpu_per_camera(bench, fps) / (d["worker_target_cpu_percent"] / 100)
    gib = vcpu * (d["worker_task_memory_mib"] / 1024) / (d["worker_task_cpu"] / 1024)
    add("Fargate worker", hours * (vcpu * p["fargate_vcpu_hour"] + gib * p["fargate_gb_hour"]),
        f"{vcpu:.4f} vCPU + {gib:.4f} GiB per camera at {d['worker_target_cpu_percent']} % CPU")
    console = d["console_tasks"] * hours * (
        d["console_cpu"] / 1024 * p["fargate_vcpu_hour"] + d["console_memory_mib"] / 1024 * p["fargate_gb_hour"]
    )
    add("Fargate console", console / cameras, f"{d['console_tasks']} tasks, fleet-wide")
    per_instance = bench.inference_items_per_s * d["endpoint_instance_vcpus"] / bench.inference_cpus
    instances = max(d["endpoint_min_capacity"], math.ceil(cameras * fps / (per_instance * d["endpoint_target_utilisation"])))
    instance_price = p["sagemaker_instance_hour"][d["endpoint_instance_type"]]
    add("SageMaker endpoint", instances * instance_price * hours / cameras,
        f"{instances} x {d['endpoint_instance_type']} ({per_instance:.0f} frames/s each, scaled from the CPU bench)")
    # --- the alert path ----------------------------------------------------------------------------------
    alerts = d["alerts_per_camera_per_day"] * 30.4
    alert_gb = alerts * d["alert_record_kb"] * 1e3 / GB
    if d["alert_stream_mode"] == "ON_DEMAND":
        stream = hours * p["kinesis_on_demand_stream_hour"] / cameras + alert_gb * (
            p["kinesis_on_demand_per_gb_written"] + p["kinesis_on_demand_per_gb_read"]
        )
    else:
        stream = d["alert_stream_shards"] * hours * p["kinesis_shard_hour"] / cameras
    add("Kinesis alert stream", stream, f"{d['alert_stream_mode']}, {alerts:.0f} alerts/camera-month")
    add("Lambda (alerts)", alerts * (p["lambda_per_million_requests"] / 1e6
                                     + d["lambda_memory_gb"] * d["lambda_ms_per_alert"] / 1000 * p["lambda_per_gb_second"]),
        "one invocation per alert (upper bound: batches share one)")
    writes = (d["checkpoint_writes_per_camera_per_s"] + d["lease_writes_per_camera_per_s"]) * seconds + 2 * alerts
    add("DynamoDB", writes / 1e6 * p["dynamodb_on_demand_per_million_write_units"],
        f"{writes / 1e6:.2f} M writes/camera-month (a checkpoint per fragment, leases, alert history)")
    # --- the archive, by lifecycle tier ---------------------------------------------------------------------
    days, cold = d["lifecycle_days"], p["s3_per_gb_month"][d["clip_storage_class"]]
    byte_per_s = bitrate_mbps * 1e6 / 8
    alert_clip_gb = alerts * d["alert_clip_s"] * byte_per_s / GB
    training_clip_gb = d["training_clip_s_per_camera_per_day"] * 30.4 * byte_per_s / GB
    snapshot_gb = alerts * d["snapshot_kb"] * 1e3 / GB
    a_std, a_cold = s3_tier_gb(alert_clip_gb, days["alert_clip_transition"], days["alert_clip_expiration"])
    c_std, c_cold = s3_tier_gb(training_clip_gb, days["clip_transition"], days["clip_expiration"])
    s_std, _ = s3_tier_gb(snapshot_gb, days["snapshot_expiration"], days["snapshot_expiration"])
    standard = a_std + c_std + s_std
    add("S3 archive STANDARD", standard * p["s3_per_gb_month"]["STANDARD"], f"{standard:.2f} GB steady state")
    add(f"S3 archive {d['clip_storage_class']}", (a_cold + c_cold) * cold, f"{a_cold + c_cold:.2f} GB steady state")
    puts = alerts * 2 + d["training_clip_s_per_camera_per_day"] / 60 * 30.4
    add("S3 requests", puts / 1000 * p["s3_put_per_thousand"], f"{puts:.0f} PUTs/camera-month")
    # --- observability --------------------------------------------------------------------------------------
    emf_gb = d["emf_bytes_per_camera_minute"] * 60 * hours / GB
    add("CloudWatch metrics, alarms, logs",
        d["emf_metrics_per_camera"] * p["cloudwatch_custom_metric_month"] + d["alarms_per_camera"] * p["cloudwatch_alarm_month"]
        + d["fixed_alarms"] * p["cloudwatch_alarm_month"] / cameras + emf_gb * p["cloudwatch_logs_ingest_per_gb"],
        f"{d['emf_metrics_per_camera']} EMF metrics (CameraId) + {d['alarms_per_camera']} alarm per camera")
    return lines


def render(lines: list[Line], cameras: int, bitrate_mbps: float, fps: float, prices: dict, goal: float | None) -> str:
    total = sum(line.per_camera for line in lines)
    width = max(len(line.component) for line in lines)
    out = [
        f"Vigil cost per camera-month: {cameras} cameras, {bitrate_mbps} Mb/s, {fps} analysed frame(s)/s",
        f"prices: {prices['region']}, {prices['as_of']} (bench/prices.json)",
        "",
        f"{'component':<{width}}  {'USD/camera-month':>16}  basis",
        f"{'-' * width}  {'-' * 16}  -----",
    ]
    out += [f"{line.component:<{width}}  {line.per_camera:>16.3f}  {line.basis}" for line in lines]
    out += [f"{'-' * width}  {'-' * 16}", f"{'total':<{width}}  {total:>16.2f}  fleet: {total * cameras:,.0f} USD/month"]
    if goal is not None:
        verdict = "met" if total < goal else "NOT met"
        out.append(f"goal < {goal:.2f} USD/camera-month: {verdict}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/cost.py", description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=1000)
    parser.add_argument("--bitrate-mbps", type=float, default=2.0)
    parser.add_argument("--fps", type=float, default=1.0, help="analysed frames per second per camera")
    parser.add_argument("--prices", type=Path, default=PRICES)
    parser.add_argument("--goal", type=float, default=15.0, help="USD per camera-month to compare with")
    parser.add_argument("--json", action="store_true", help="print the lines as JSON")
    args = parser.parse_args(argv)
    prices = load_prices(args.prices)
    try:
        lines = cost_lines(args.cameras, args.bitrate_mbps, args.fps, prices, load_bench())
    except ValueError as exc:
        print(f"cost: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([line.__dict__ for line in lines], indent=1))
    else:
        print(render(lines, args.cameras, args.bitrate_mbps, args.fps, prices, args.goal))
    return 0


if __name__ == "__main__":
    sys.exit(main())
