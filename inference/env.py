"""Environment variables read by the inference handler and the local server, read once at import.

The `SAGEMAKER_*` names are the ones SageMaker sets (or lets a model's `Environment` set) in a
serving container; the `VIGIL_*` ones are ours. A malformed value stops the process at import with a
one-line message (`SystemExit`): a misconfigured container must not start serving."""

import os
import sys

VIGIL_MAX_BATCH = "VIGIL_MAX_BATCH"  # most items in one request (default 64); more is a 413
VIGIL_TORCH_THREADS = "VIGIL_TORCH_THREADS"  # torch intra-op threads per worker (default: CPUs / workers, <= 4)
VIGIL_PRECISION = "VIGIL_PRECISION"  # auto (float16 on a GPU, float32 on a CPU), float32, float16, bfloat16
SAGEMAKER_BIND_TO_PORT = "SAGEMAKER_BIND_TO_PORT"  # port SageMaker asks the container to serve on
SAGEMAKER_MODEL_SERVER_WORKERS = "SAGEMAKER_MODEL_SERVER_WORKERS"  # server processes, one model each (default 1)
SAGEMAKER_MODEL_SERVER_TIMEOUT = "SAGEMAKER_MODEL_SERVER_TIMEOUT"  # seconds one invocation may take (default 60)
VIGIL_DOCKER = "VIGIL_DOCKER"  # docker binary `make deploy` builds and pushes images with (default docker)
VIGIL_TERRAFORM = "VIGIL_TERRAFORM"  # terraform binary `make deploy` reads outputs with (default terraform)
# Set by the server for its worker processes: the unpacked model directory they load.
VIGIL_MODEL_DIR = "VIGIL_MODEL_DIR"
VIGIL_MALLOC_TUNING = "VIGIL_MALLOC_TUNING"  # 0: leave glibc malloc's defaults (see ALLOCATOR_ENV)

# glibc malloc, tuned for a process that scores batches: with its defaults, every buffer over the
# (dynamic) mmap threshold is a fresh mmap, zero-filled page by page, and freed memory above the trim
# threshold goes back to the kernel after each request, so each batch pays its page faults again.
# Both thresholds at 1 GiB keep the buffers in the heap from one request to the next (the process stays
# at its peak size, a few hundred MB). Measured on 2 cores, batch 32 of a 7-frame model, predict only:
# 240-259 ms with the defaults, 197-216 ms with these (docs/design.md, "Inference endpoint").
# glibc reads them when a process starts, so `inference.serve` restarts itself once with them
# (`with_allocator_tuning`) and the serving image sets them in its environment.
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "1073741824"}


def with_allocator_tuning(module: str, argv: list[str]) -> None:
    """Re-execute `python -m module argv` with `ALLOCATOR_ENV` when this process started without it
    (and $VIGIL_MALLOC_TUNING is not 0); return when it already has it."""
    if os.environ.get(VIGIL_MALLOC_TUNING, "").strip() == "0":
        return
    if all(os.environ.get(name) == value for name, value in ALLOCATOR_ENV.items()):
        return
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], {**os.environ, **ALLOCATOR_ENV})

DEFAULT_MAX_BATCH = 64
DEFAULT_PORT = 8080
DEFAULT_WORKERS = 1
DEFAULT_TIMEOUT_S = 60.0
PRECISIONS = ("auto", "float32", "float16", "bfloat16")


def _int(name: str, default: int, minimum: int = 1) -> int:
    value = os.environ.get(name, "").strip()
    try:
        number = int(value) if value else default
    except ValueError:
        raise SystemExit(f"error: ${name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise SystemExit(f"error: ${name} must be >= {minimum}, got {number}")
    return number


def _float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    try:
        number = float(value) if value else default
    except ValueError:
        raise SystemExit(f"error: ${name} must be a number of seconds, got {value!r}") from None
    if not number > 0:
        raise SystemExit(f"error: ${name} must be > 0, got {value!r}")
    return number


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise SystemExit(f"error: ${name} must be one of {', '.join(choices)}; got {value!r}")
    return value


MAX_BATCH = _int(VIGIL_MAX_BATCH, DEFAULT_MAX_BATCH)
PORT = _int(SAGEMAKER_BIND_TO_PORT, DEFAULT_PORT, minimum=0)
WORKERS = _int(SAGEMAKER_MODEL_SERVER_WORKERS, DEFAULT_WORKERS)
TIMEOUT_S = _float(SAGEMAKER_MODEL_SERVER_TIMEOUT, DEFAULT_TIMEOUT_S)
TORCH_THREADS = _int(VIGIL_TORCH_THREADS, max(1, min(4, (os.cpu_count() or 1) // WORKERS)))
PRECISION = _choice(VIGIL_PRECISION, "auto", PRECISIONS)
