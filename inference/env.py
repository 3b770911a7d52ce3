"""Environment variables read by the inference handler and the local server, read once at import."""

import os

VIGIL_MAX_BATCH = "VIGIL_MAX_BATCH"  # most frames in one request (default 64); more is a 413
VIGIL_TORCH_THREADS = "VIGIL_TORCH_THREADS"  # torch intra-op threads (default: min(4, CPU count))
SAGEMAKER_BIND_TO_PORT = "SAGEMAKER_BIND_TO_PORT"  # port SageMaker asks the container to serve on

DEFAULT_MAX_BATCH = 64
DEFAULT_PORT = 8080


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"${name} must be an integer, got {value!r}") from None


MAX_BATCH = _int(VIGIL_MAX_BATCH, DEFAULT_MAX_BATCH)
TORCH_THREADS = _int(VIGIL_TORCH_THREADS, min(4, os.cpu_count() or 1))
PORT = _int(SAGEMAKER_BIND_TO_PORT, DEFAULT_PORT)
