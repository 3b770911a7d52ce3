"""EMF metric lines: the shape CloudWatch reads (namespace Vigil, dimension CameraId), interval
deltas of the frame counters, the lag of the last analysed frame, endpoint latency."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import numpy as np

from contracts.inference import FrameResult, InferenceResponse
from worker.detector import Detector
from worker.metrics import MetricsReporter, TimedDetector, emf_record
from worker.pipeline import WorkerStats
from worker.sources import SourceStats


class ConstantDetector(Detector):
    def detect(self, images):  # type: ignore[no-untyped-def]
        return InferenceResponse(model_version="m", results=[FrameResult(score=0.0) for _ in images])


def test_emf_record_has_the_shape_cloudwatch_and_the_alarm_expect() -> None:
    record = emf_record(
        "cam-1", {"FrameLagSeconds": 1.5, "FramesDropped": 2}, {"FrameLagSeconds": "Seconds"}, 1000
    )
    assert record == {
        "_aws": {
            "Timestamp": 1000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Vigil",
                    "Dimensions": [["CameraId"]],
                    "Metrics": [
                        {"Name": "FrameLagSeconds", "Unit": "Seconds"},
                        {"Name": "FramesDropped", "Unit": "Count"},
                    ],
                }
            ],
        },
        "CameraId": "cam-1",
        "FrameLagSeconds": [1.5],
        "FramesDropped": [2.0],
    }


def test_reporter_writes_interval_deltas_lag_and_endpoint_latency() -> None:
    # GIVEN a worker that has decoded 30 and analysed 5 frames, its last frame 0.8 s after capture
    stats = WorkerStats(frames_sampled=10, frames_gated=4, frames_analysed=5, frames_dropped=1)
    detector = TimedDetector(ConstantDetector())
    detector.detect([np.zeros((4, 4, 3), np.uint8)])
    worker = SimpleNamespace(
        camera_id="cam-9",
        stats=stats,
        source=SimpleNamespace(stats=SourceStats(frames_decoded=30)),
        last_lag_s=0.8,
        detector=detector,
    )
    out = io.StringIO()
    reporter = MetricsReporter(worker, out=out, clock=lambda: 2.0)
    # WHEN two lines are written, with 3 more frames analysed in between
    reporter.emit()
    stats.frames_analysed += 3
    stats.frames_sampled += 3
    reporter.emit()
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    # THEN the first has the totals so far, the second only the interval's frames
    assert {k: v for k, v in first.items() if k != "_aws"} == {
        "CameraId": "cam-9",
        "FramesDecoded": [30.0],
        "FramesSampled": [10.0],
        "FramesGated": [4.0],
        "FramesAnalysed": [5.0],
        "FramesDropped": [1.0],
        "FramesFailed": [0.0],
        "FrameLagSeconds": [0.8],
        "EndpointLatencyMs": first["EndpointLatencyMs"],
    }
    assert first["EndpointLatencyMs"][0] >= 0
    assert {k: v for k, v in second.items() if k != "_aws"} == {
        "CameraId": "cam-9",
        "FramesDecoded": [0.0],
        "FramesSampled": [3.0],
        "FramesGated": [0.0],
        "FramesAnalysed": [3.0],
        "FramesDropped": [0.0],
        "FramesFailed": [0.0],
        "FrameLagSeconds": [0.8],
    }
    assert second["_aws"]["Timestamp"] == 2000
