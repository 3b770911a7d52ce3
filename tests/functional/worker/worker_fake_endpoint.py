"""A tiny stand-in for the SageMaker endpoint, for the worker's tests: real HTTP (uvicorn on
127.0.0.1), the runtime's path `POST /endpoints/{name}/invocations`, the inference contract
(npy uint8 N x H x W x 3 in, `InferenceResponse` JSON out). It scores each real decoded frame by
how much of it is dark: the test scenes' intruder is a dark block, the room has no dark pixels.

score = 50 x fraction of pixels with luminance below DARK_LUMA (the intruder: about 2.0);
threshold = 1.0; the one region is the bounding box of the dark pixels."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.inference import FrameResult, InferenceResponse, Region
from local.stack import free_port

DARK_LUMA = 55
SCORE_SCALE = 50.0
THRESHOLD = 1.0
MODEL_VERSION = "fake-darkness-1"


def darkness(image: np.ndarray) -> FrameResult:
    """The fake model: one frame (RGB uint8 H x W x 3) -> score and the dark pixels' bounding box."""
    luma = image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114
    dark = luma < DARK_LUMA
    score = SCORE_SCALE * float(dark.mean())
    if not dark.any():
        return FrameResult(score=score, regions=[])
    rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
    height, width = dark.shape
    region = Region(
        x=cols[0] / width,
        y=rows[0] / height,
        w=(cols[-1] + 1 - cols[0]) / width,
        h=(rows[-1] + 1 - rows[0]) / height,
        score=score,
    )
    return FrameResult(score=score, regions=[region])


@dataclass
class FakeEndpoint:
    """What the fake endpoint saw, and failures to inject."""

    url: str = ""
    requests: list[dict] = field(default_factory=list)
    fail_next: int = 0
    """Answer this many next requests with 503 (a retryable error)."""
    fail_status: int = 503
    delay_s: float = 0.0
    """Answer this much later (a slow endpoint)."""

    def app(self) -> Starlette:
        async def invocations(request: Request) -> Response:
            body = await request.body()
            self.requests.append(
                {
                    "endpoint": request.path_params["name"],
                    "content_type": request.headers.get("content-type"),
                    "accept": request.headers.get("accept"),
                    "custom_attributes": request.headers.get("x-amzn-sagemaker-custom-attributes"),
                    "bytes": len(body),
                }
            )
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"message": "injected failure"}, status_code=self.fail_status)
            frames = np.load(io.BytesIO(body), allow_pickle=False)
            self.requests[-1]["shape"] = frames.shape
            response = InferenceResponse(
                model_version=MODEL_VERSION,
                threshold=THRESHOLD,
                results=[darkness(frame) for frame in frames],
            )
            return Response(response.model_dump_json(), media_type="application/json")

        return Starlette(routes=[Route("/endpoints/{name}/invocations", invocations, methods=["POST"])])


@contextmanager
def serve_fake_endpoint() -> Iterator[FakeEndpoint]:
    endpoint = FakeEndpoint()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(endpoint.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake endpoint did not start")
        time.sleep(0.01)
    endpoint.url = f"http://127.0.0.1:{port}"
    try:
        yield endpoint
    finally:
        server.should_exit = True
        thread.join(timeout=10)
