"""Metrics as CloudWatch embedded metric format (EMF, written by aws-lambda-powertools,
which works outside Lambda too): one JSON line per camera per interval on stdout, which Fargate's
awslogs driver ships and CloudWatch turns into metrics (no PutMetricData, no extra IAM). Each value
is an array of one (EMF allows arrays; powertools writes them so). Namespace `Vigil`, dimension `CameraId` (the Terraform alarm and the ECS scaling
policy read `Vigil / FrameLagSeconds / CameraId`).

Per interval: FrameLagSeconds (now - capture time of the last analysed frame), frames decoded /
sampled / gated / analysed / dropped / failed (counts in the interval), EndpointLatencyMs (mean
InvokeEndpoint time in the interval, when a `TimedDetector` wraps the detector)."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

import numpy as np
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from contracts.inference import InferenceResponse
from worker.detector import Detector

logger = logging.getLogger(__name__)

NAMESPACE = "Vigil"
DIMENSION = "CameraId"
LAG_METRIC = "FrameLagSeconds"
COUNTERS = {
    "FramesDecoded": "frames_decoded",
    "FramesSampled": "frames_sampled",
    "FramesGated": "frames_gated",
    "FramesAnalysed": "frames_analysed",
    "FramesDropped": "frames_dropped",
    "FramesFailed": "frames_failed",
}


def emf_record(
    camera_id: str, values: dict[str, float], units: dict[str, str], timestamp_ms: int | None = None
) -> dict[str, Any]:
    """One EMF document: `values` as metrics of `camera_id` in the Vigil namespace, serialised by
    powertools (`EphemeralMetrics`: no state shared between the cameras of one task, no Lambda needed).
    Its only dimension is `CameraId` (no `service` dimension: the task sets no POWERTOOLS_SERVICE_NAME),
    as the alarm and the scaling policy expect."""
    metrics = EphemeralMetrics(namespace=NAMESPACE)
    metrics.add_dimension(name=DIMENSION, value=camera_id)
    for name, value in values.items():
        metrics.add_metric(name=name, unit=units.get(name, MetricUnit.Count), value=value)
    if timestamp_ms is not None:
        metrics.set_timestamp(timestamp_ms)
    return dict(metrics.serialize_metric_set())


class TimedDetector(Detector):
    """Wraps a detector and keeps the InvokeEndpoint latency for the metrics."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.calls = 0
        self.total_s = 0.0
        self._lock = threading.Lock()

    def detect(self, images: Sequence[np.ndarray]) -> InferenceResponse:
        started = time.perf_counter()
        try:
            return self.inner.detect(images)
        finally:
            with self._lock:
                self.calls += 1
                self.total_s += time.perf_counter() - started

    def take(self) -> tuple[int, float]:
        with self._lock:
            taken, self.calls, self.total_s = (self.calls, self.total_s), 0, 0.0
        return taken

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class MetricsReporter:
    """Writes one EMF line for a worker's camera every `interval_s` (and a last one at `stop()`)."""

    def __init__(
        self,
        worker: Any,
        *,
        interval_s: float = 60.0,
        out: IO[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.worker = worker
        self.interval_s = interval_s
        self.out = out or sys.stdout
        self.clock = clock
        self._last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"metrics-{worker.camera_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.emit()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.emit()

    def snapshot(self) -> tuple[dict[str, float], dict[str, str]]:
        stats = self.worker.stats
        current = {
            "frames_decoded": self.worker.source.stats.frames_decoded,
            **{field: getattr(stats, field) for field in COUNTERS.values() if field != "frames_decoded"},
        }
        values: dict[str, float] = {}
        units: dict[str, str] = {}
        for metric, field in COUNTERS.items():
            values[metric] = current[field] - self._last.get(field, 0)
        self._last = current
        lag = getattr(self.worker, "last_lag_s", None)
        if lag is not None:
            values[LAG_METRIC] = round(lag, 3)
            units[LAG_METRIC] = "Seconds"
        detector = self.worker.detector
        if isinstance(detector, TimedDetector):
            calls, total_s = detector.take()
            if calls:
                values["EndpointLatencyMs"] = round(1000 * total_s / calls, 2)
                units["EndpointLatencyMs"] = "Milliseconds"
        return values, units

    def emit(self) -> None:
        values, units = self.snapshot()
        record = emf_record(self.worker.camera_id, values, units, int(self.clock() * 1000))
        self.out.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.out.flush()
