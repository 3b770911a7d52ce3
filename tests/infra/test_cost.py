"""bench/cost.py (make cost): the cost per camera-month from named, dated prices and the benchmarks."""

from __future__ import annotations

import importlib.util
import json
import sys

import infra_hcl
import pytest

spec = importlib.util.spec_from_file_location("vigil_cost", infra_hcl.REPO_ROOT / "bench" / "cost.py")
cost = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = cost  # dataclasses look their module up
spec.loader.exec_module(cost)

BENCH = cost.Bench(
    worker_cpu_s_per_video_s=0.005,
    worker_keyframe_rate=1.0,
    worker_all_frames_cpu_s_per_video_s=0.01,
    worker_cpu_s_per_analysed_frame=0.0005,
    inference_items_per_s=100.0,
    inference_cpus=2,
)


def by_component(lines):
    return {line.component: line.per_camera for line in lines}


def test_prices_are_named_dated_and_cover_every_component():
    prices = cost.load_prices()
    assert prices["region"] and prices["as_of"][:4].isdigit()
    # the deployment inputs match the Terraform defaults they stand for
    model = infra_hcl.module("model")
    assert prices["deployment"]["endpoint_min_capacity"] == 1
    assert prices["deployment"]["kvs_retention_hours"] == 24
    assert len(infra_hcl.module("network").variables["interface_endpoint_services"]["default"]) == (
        prices["deployment"]["interface_endpoints"]
    )
    assert model.variables["autoscaling"]  # exists
    lines = cost.cost_lines(1000, 2.0, 1.0, prices, cost.load_bench())
    assert all(line.per_camera >= 0 for line in lines)


def test_kvs_lines_follow_the_bitrate_exactly():
    # GIVEN 1 Mb/s for 730 h = 328.5 GB  WHEN priced at 0.01 USD/GB ingest and consumption
    prices = cost.load_prices()
    prices["prices"] |= {"kvs_ingest_per_gb": 0.01, "kvs_consumption_per_gb": 0.01, "vpc_interface_endpoint_per_gb": 0.0}
    lines = by_component(cost.cost_lines(10, 1.0, 1.0, prices, BENCH))
    # THEN each is 3.285 USD per camera-month
    assert lines["KVS ingest"] == pytest.approx(3.285)
    assert lines["KVS consumption (GetMedia)"] == pytest.approx(3.285)
    # storage: 24 h of 1 Mb/s = 10.8 GB
    assert lines["KVS storage"] == pytest.approx(10.8 * prices["prices"]["kvs_storage_per_gb_month"])


def test_fixed_costs_are_shared_by_the_fleet_and_the_endpoint_rounds_up_instances():
    prices = cost.load_prices()
    small = by_component(cost.cost_lines(10, 2.0, 1.0, prices, BENCH))
    large = by_component(cost.cost_lines(1000, 2.0, 1.0, prices, BENCH))
    assert small["VPC interface endpoints (hours)"] == pytest.approx(100 * large["VPC interface endpoints (hours)"])
    assert small["KVS ingest"] == pytest.approx(large["KVS ingest"])
    # 1000 frames/s over 4-vCPU instances of 200 frames/s at 70 %: ceil(7.14) = 8 instances
    price = prices["prices"]["sagemaker_instance_hour"][prices["deployment"]["endpoint_instance_type"]]
    assert large["SageMaker endpoint"] == pytest.approx(8 * price * 730 / 1000)
    # 10 cameras: still min_capacity (1) instance
    assert small["SageMaker endpoint"] == pytest.approx(price * 730 / 10)


def test_worker_cpu_scales_below_and_above_the_keyframe_rate():
    assert cost.worker_vcpu_per_camera(BENCH, 0.5) == pytest.approx(0.0025)
    assert cost.worker_vcpu_per_camera(BENCH, 1.0) == pytest.approx(0.005)
    assert cost.worker_vcpu_per_camera(BENCH, 5.0) == pytest.approx(0.01 + 5 * 0.0005)


def test_bench_inputs_are_read_from_the_results():
    bench = cost.load_bench()
    worker = json.loads(cost.WORKER_BENCH.read_text())["inputs"]["camera"]["worker_1fps"]
    assert bench.worker_cpu_s_per_video_s == worker["cpu_s_per_video_s"]
    assert bench.inference_items_per_s > 0 and bench.inference_cpus >= 1


def test_cli_prints_the_table_with_a_total_and_the_goal(capsys):
    assert cost.main(["--cameras", "1000", "--bitrate-mbps", "2", "--fps", "1"]) == 0
    out = capsys.readouterr().out
    assert "total" in out and "goal < 15.00 USD/camera-month:" in out
    assert cost.main(["--cameras", "0"]) == 2
