"""`python -m inference.serve --model PATH --port N`: the SageMaker container contract, locally.

`GET /ping` answers 200 once the model is loaded; `POST /invocations` runs the handler in
`inference.inference`. The same handler also answers `POST /endpoints/{name}/invocations`, the
SageMaker Runtime `InvokeEndpoint` path, so boto3's `sagemaker-runtime` client works against this
server with `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:N`. Errors are JSON
`{"message": ...}` with an `x-amzn-ErrorType` header, which botocore turns into a readable
`ClientError` (`ModelError` for the handler's own errors, as on SageMaker).

The container contract's environment: `SAGEMAKER_BIND_TO_PORT` (default port, 8080),
`SAGEMAKER_MODEL_SERVER_WORKERS` (server processes, each with its own copy of the model; default 1),
`SAGEMAKER_MODEL_SERVER_TIMEOUT` (seconds an invocation may take before the server answers 504; the
forward pass itself cannot be interrupted and finishes in the background). A failure that is not the
client's is a 500 whose traceback is logged; the server keeps serving.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import socket
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.supervisors import Multiprocess

from contracts.inference import CONTENT_TYPE_JSON
from inference import env
from inference.inference import (
    InferenceError,
    LoadedModel,
    ModelLoadError,
    input_fn,
    model_fn,
    output_fn,
    predict_fn,
)

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ERROR_TYPE_HEADER = "x-amzn-ErrorType"
SERVER_TIMING_HEADER = "Server-Timing"


class ServerTiming:
    """Where a request's time went on the server, as a `Server-Timing` header (W3C): `read` (the body
    off the socket), `queue` (waiting for the inference thread), `decode` (`input_fn`), `predict`
    (`predict_fn`: the model lock and the forward pass), `encode` (`output_fn`), `resume` (back on the
    event loop). `make bench-inference` subtracts their sum from what the client saw: the rest is
    the network and HTTP."""

    def __init__(self) -> None:
        self._last: float | None = None
        self.phases: dict[str, float] = {}

    def mark(self, phase: str, since: float | None = None) -> None:
        now = time.perf_counter()
        start = since if since is not None else self._last
        if start is not None:
            self.phases[phase] = now - start
        self._last = now

    def header(self) -> str:
        return ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in self.phases.items())


class HeaderContext:
    """The part of the SageMaker toolkit's request context the handler reads: request headers."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = headers

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self._headers.get(key)


def error_response(status: int, message: str) -> JSONResponse:
    """SageMaker Runtime's error shape: botocore reads the code from the header, the message from the body."""
    return JSONResponse(
        {"message": message, "OriginalStatusCode": status, "OriginalMessage": message},
        status_code=status,
        headers={ERROR_TYPE_HEADER: "ModelError"},
    )


def create_app(model_dir: str | Path, timeout_s: float | None = None) -> Starlette:
    """An app serving the model in `model_dir` (loaded now, so `/ping` is 200 from the first request).

    The model is loaded, warmed up and run in one thread of its own, never elsewhere: every thread that
    calls torch gets an OpenMP team whose workers spin on the cores after each parallel region, so a
    pool of request threads made each forward pass compete with the idle teams of the others (+6 ms
    on a 10 ms batch-1 forward on 2 cores, `make bench-inference`, issue 20)."""
    inference_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
    model: LoadedModel = inference_thread.submit(model_fn, model_dir).result()
    timeout_s = env.TIMEOUT_S if timeout_s is None else timeout_s

    async def ping(request: Request) -> Response:
        return Response(status_code=200)

    async def invocations(request: Request) -> Response:
        received = time.perf_counter()
        body = await request.body()
        context = HeaderContext(request.headers)
        timing = ServerTiming()
        timing.mark("read", received)

        def handle() -> str:
            timing.mark("queue")
            data = input_fn(body, request.headers.get("content-type"), context)
            timing.mark("decode")
            prediction = predict_fn(data, model)
            timing.mark("predict")
            payload = output_fn(prediction, request.headers.get("accept"))
            timing.mark("encode")
            return payload

        try:
            payload = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(inference_thread, handle), timeout=timeout_s
            )
        except InferenceError as exc:
            if exc.status >= 500:
                logger.exception("invocation failed")
            return error_response(exc.status, str(exc))
        except TimeoutError:
            logger.error("invocation took longer than %s s (%s)", timeout_s, env.SAGEMAKER_MODEL_SERVER_TIMEOUT)
            return error_response(504, f"the model did not answer within {timeout_s:g} s")
        except Exception:
            logger.exception("invocation failed")
            return error_response(500, "internal error while scoring the frames; see the endpoint log")
        timing.mark("resume")
        return Response(payload, media_type=CONTENT_TYPE_JSON, headers={SERVER_TIMING_HEADER: timing.header()})

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/endpoints/{endpoint_name}/invocations", invocations, methods=["POST"]),
        ]
    )
    app.state.model = model
    return app


def app_from_environment() -> Starlette:
    """The app of one server process when there are several (uvicorn's factory, `$VIGIL_MODEL_DIR`)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    return create_app(os.environ[env.VIGIL_MODEL_DIR])


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inference.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="model.tar.gz or a model directory (required)")
    parser.add_argument(
        "--port", type=int, default=env.PORT,
        help=f"TCP port (default: ${env.SAGEMAKER_BIND_TO_PORT}, else {env.DEFAULT_PORT}; now {env.PORT})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--workers", type=int, default=env.WORKERS,
        help=f"server processes, one model each (default: ${env.SAGEMAKER_MODEL_SERVER_WORKERS}, else "
        f"{env.DEFAULT_WORKERS}; now {env.WORKERS})",
    )
    return parser


def unpack_model(path: Path, workdir: Path) -> Path:
    """A model directory: PATH itself, or a model.tar.gz extracted into `workdir` (as SageMaker does)."""
    if path.is_dir():
        return path
    if not path.is_file():
        raise ModelLoadError(f"model not found: {path}")
    try:
        with tarfile.open(path, "r:*") as tar:
            tar.extractall(workdir, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        reason = " ".join(str(exc).split())
        raise ModelLoadError(f"cannot extract model archive {path}: {reason}") from exc
    return workdir


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket, created with `IPPROTO_TCP` named: asyncio sets TCP_NODELAY only on
    connections whose socket says it is TCP, and an accepted connection inherits the listener's
    `proto`. With proto 0, Nagle held each response's body back until the client's delayed ACK of
    its headers: +40 ms on every request (`make bench-inference`, issue 20)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OSError(f"port {port} on {host} is already in use") from exc
        raise OSError(f"cannot bind {host}:{port}: {exc.strerror}") from exc
    return sock


class _Server(uvicorn.Server):
    """uvicorn, announcing once it accepts connections."""

    def __init__(self, config: uvicorn.Config, announce: str) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self._announce, flush=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    args = get_args_parser().parse_args(argv)
    if args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
    if argv is None:  # the command line, not a caller in this process: restart under ALLOCATOR_ENV
        env.with_allocator_tuning("inference.serve", sys.argv[1:])
    # uvicorn hands a SIGTERM back to the process once it has shut down; the default action would end
    # it there, leaving the extracted model behind: exit through the `with` instead.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="vigil-model-") as workdir:
        try:
            sock = bind_socket(args.host, args.port)
            model_dir = unpack_model(args.model, Path(workdir))
            app = create_app(model_dir)  # also checks the model before any worker process starts
        except (ModelLoadError, OSError) as exc:
            # name what the operator gave, not the folder it was extracted into
            print(f"error: {str(exc).replace(str(workdir), str(args.model))}", file=sys.stderr)
            return 2
        host = f"[{args.host}]" if ":" in args.host else args.host
        port = sock.getsockname()[1]
        announce = f"serving model {app.state.model.model_version} on http://{host}:{port}"
        common = {"log_level": "warning", "access_log": False, "timeout_graceful_shutdown": 5}
        if args.workers == 1:
            server = _Server(uvicorn.Config(app, **common), announce)
            server.run(sockets=[sock])
            return 0
        del app
        os.environ[env.VIGIL_MODEL_DIR] = str(model_dir)
        config = uvicorn.Config(
            "inference.serve:app_from_environment", factory=True, workers=args.workers, **common
        )
        sock.listen(2048)  # connections wait in the backlog until a worker process has loaded the model
        print(f"{announce} ({args.workers} worker processes)", flush=True)
        Multiprocess(config, sockets=[sock]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
