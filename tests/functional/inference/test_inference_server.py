"""`python -m inference.serve` in a subprocess on a free port: the SageMaker container contract over
real HTTP, and boto3's sagemaker-runtime `invoke_endpoint` against it."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import numpy as np
import pytest
from PIL import Image

from contracts.inference import MAX_PAYLOAD_BYTES, FrameResult, InferenceResponse
from inference.inference import Batch, input_fn, model_fn, predict_fn

REPO_ROOT = Path(__file__).resolve().parents[3]


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def jpeg(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_ping_is_200_once_loaded(server_url):
    assert httpx.get(f"{server_url}/ping").status_code == 200


def test_npy_batch_scores_intruder_above_and_empty_below(server_url, scenes):
    # GIVEN a batch of two empty-scene frames and two intruder frames
    batch = np.concatenate([scenes["normal"][:2], scenes["intruder"][1:3]])

    # WHEN it is posted to /invocations
    response = httpx.post(
        f"{server_url}/invocations", content=npy(batch), headers={"Content-Type": "application/x-npy"}
    )

    # THEN 200 JSON with four results in order: empty below the threshold, intruder above
    assert (response.status_code, response.headers["content-type"]) == (200, "application/json")
    body = InferenceResponse.model_validate_json(response.content)
    above = [result.score > body.threshold for result in body.results]
    assert (body.model_version, above) == ("tiny-test-1", [False, False, True, True])


def test_jpeg_frame(server_url, scenes):
    response = httpx.post(
        f"{server_url}/invocations", content=jpeg(scenes["intruder"][2]), headers={"Content-Type": "image/jpeg"}
    )
    body = InferenceResponse.model_validate_json(response.content)
    assert response.status_code == 200 and len(body.results) == 1 and body.results[0].score > body.threshold


@pytest.mark.parametrize(
    ("content", "content_type", "status", "message"),
    [
        (b"hello", "text/plain", 415, "unsupported content type 'text/plain'"),
        (b"definitely not npy", "application/x-npy", 400, "body is not a numpy .npy array"),
        (npy(np.zeros((2, 8, 8, 3), np.int16)), "application/x-npy", 400, "frames must be uint8, got int16"),
        (b"\0" * (MAX_PAYLOAD_BYTES + 1), "image/png", 413, "over the 6291456-byte limit"),
        (npy(np.zeros((17, 4, 4, 3), np.uint8)), "application/x-npy", 413, "batch of 17 items is over the limit of 16"),
        (b'{"instances": "nope"}', "application/json", 400, "body is not an inference request: instances"),
    ],
)
def test_client_errors_are_json_with_error_type(server_url, content, content_type, status, message):
    # GIVEN a bad request WHEN posted THEN its status, a JSON message, and the error-type header
    response = httpx.post(f"{server_url}/invocations", content=content, headers={"Content-Type": content_type})
    assert (response.status_code, response.headers["x-amzn-errortype"]) == (status, "ModelError")
    assert message in response.json()["message"]
    assert response.json()["OriginalStatusCode"] == status


def test_concurrent_requests_all_succeed(server_url, scenes):
    # GIVEN 12 requests in flight at once
    body = npy(scenes["intruder"][1:3])

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{server_url}/invocations", content=body, headers={"Content-Type": "application/x-npy"})

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(post, range(12)))

    # THEN every one is answered with the same scores
    assert {r.status_code for r in responses} == {200}
    assert len({tuple(res.score for res in InferenceResponse.model_validate_json(r.content).results)
                for r in responses}) == 1


def test_boto3_invoke_endpoint_success_and_415(server_url, scenes, tiny_model_dir, monkeypatch):
    # GIVEN boto3's sagemaker-runtime client pointed at the local server, as the worker does
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", server_url)
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")

    # WHEN an npy batch is sent for camera cam-1
    response = client.invoke_endpoint(
        EndpointName="vigil-anomaly", Body=npy(scenes["normal"][:2]), ContentType="application/x-npy",
        Accept="application/json", CustomAttributes="camera_id=cam-1",
    )

    # THEN the JSON response carries the camera's calibrated threshold and two results
    body = InferenceResponse.model_validate_json(response["Body"].read())
    thresholds = json.loads((tiny_model_dir / "config.json").read_text())["thresholds"]
    assert (response["ContentType"], body.threshold, len(body.results)) == (
        "application/json", thresholds["cam-1"], 2,
    )

    # AND an unsupported content type raises ModelError with a readable message and the 415
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint(EndpointName="vigil-anomaly", Body=b"hello", ContentType="text/plain")
    error = raised.value.response
    assert error["Error"] == {
        "Code": "ModelError",
        "Message": "unsupported content type 'text/plain'; use application/x-npy, image/jpeg, image/png or "
                   "application/json",
    }
    assert (error["ResponseMetadata"]["HTTPStatusCode"], error["OriginalStatusCode"]) == (415, 415)


def serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inference.serve", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )


def test_cli_exits_2_with_one_line_for_a_missing_model(tmp_path):
    result = serve("--model", str(tmp_path / "nope.tar.gz"), "--port", "0")
    assert (result.returncode, result.stderr) == (2, f"error: model not found: {tmp_path / 'nope.tar.gz'}\n")


def test_cli_exits_2_with_one_line_for_a_corrupt_archive(tmp_path):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"\x1f\x8b garbage that is not gzip")
    result = serve("--model", str(archive), "--port", "0")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot extract model archive {archive}: ")
    assert result.stderr.count("\n") == 1


def test_cli_exits_2_with_one_line_for_a_port_in_use(server_url, tiny_model_dir):
    port = server_url.rsplit(":", 1)[1]
    result = serve("--model", str(tiny_model_dir), "--port", port)
    assert (result.returncode, result.stderr) == (2, f"error: port {port} on 127.0.0.1 is already in use\n")


def packed(model_dir: Path, tmp_path: Path) -> Path:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in model_dir.iterdir():
            tar.add(path, arcname=path.name)
    return archive


def test_sigterm_stops_the_server_and_removes_the_extracted_model(tiny_model_dir, tmp_path):
    # GIVEN the server on a model.tar.gz, extracting into a temporary folder of its own
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = subprocess.Popen(
        [sys.executable, "-m", "inference.serve", "--model", str(packed(tiny_model_dir, tmp_path)), "--port", "0"],
        cwd=REPO_ROOT, env={**os.environ, "TMPDIR": str(scratch)}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout.readline().startswith("serving model")
    assert [p.name[:12] for p in scratch.iterdir()] == ["vigil-model-"]
    # WHEN it is stopped as SageMaker and ECS stop it
    server.send_signal(signal.SIGTERM)
    # THEN it exits 0 and leaves nothing behind
    assert (server.wait(30), list(scratch.iterdir())) == (0, [])


def test_a_model_that_cannot_load_is_named_as_given_not_as_extracted(tmp_path):
    # GIVEN an archive that extracts but holds no model
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("no model here")
    archive = packed(empty, tmp_path)
    # WHEN the server is started on it THEN the error names the archive the operator gave
    result = serve("--model", str(archive), "--port", "0")
    assert result.returncode == 2 and str(archive) in result.stderr and "vigil-model-" not in result.stderr


def json_request(frames: np.ndarray) -> bytes:
    """application/json with one JPEG per item (frame model)."""
    return json.dumps({"instances": [{"frames": [base64.b64encode(jpeg(frame)).decode()]} for frame in frames]}).encode()


def post(url: str, body: bytes, content_type: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/invocations", content=body, headers={"Content-Type": content_type, **headers},
                      timeout=30)


def test_scores_over_http_equal_predict_fn_called_directly(server_url, scenes, tiny_model_dir):
    # GIVEN real decoded frames (empty scene and intruder) and the handler loaded in this process
    frames = np.concatenate([scenes["normal"][:2], scenes["intruder"][1:3]])
    model = model_fn(tiny_model_dir)

    # WHEN the same frames go over HTTP as npy, as JSON (JPEGs) and one as a JPEG body
    over_npy = InferenceResponse.model_validate_json(post(server_url, npy(frames), "application/x-npy").content)
    over_json = InferenceResponse.model_validate_json(post(server_url, json_request(frames), "application/json").content)
    over_jpeg = InferenceResponse.model_validate_json(post(server_url, jpeg(frames[3]), "image/jpeg").content)

    # THEN each answer is exactly what predict_fn gives on the same decoded input
    assert over_npy == predict_fn(Batch(frames), model)
    assert over_json == predict_fn(input_fn(json_request(frames), "application/json"), model)
    assert over_jpeg == predict_fn(input_fn(jpeg(frames[3]), "image/jpeg"), model)
    assert [r.score > over_json.threshold for r in over_json.results] == [False, False, True, True]


@pytest.mark.parametrize(("accept", "status"), [("text/csv", 406), ("text/html, application/json;q=0.2", 200)])
def test_accept_header_is_honoured(server_url, scenes, accept, status):
    response = post(server_url, npy(scenes["normal"][:1]), "application/x-npy", Accept=accept)
    assert response.status_code == status


def window(first_pixel: int = 100, moved: bool = True) -> np.ndarray:
    """3 x 16 x 16 x 3 frames of a grey scene; with `moved` a white 4 x 4 block appears in the last one."""
    frames = np.full((3, 16, 16, 3), 100, np.uint8)
    frames[0, 0, 0, 0] = first_pixel
    if moved:
        frames[-1, 4:8, 8:12] = 255
    return frames


def test_temporal_model_over_http(start_server, temporal_model_dir):
    # GIVEN the server on a temporal artifact (temporal_window 3)
    url = start_server(temporal_model_dir)

    # WHEN a batch of two windows is posted, then a single frame
    response = post(url, npy(np.stack([window(moved=False), window()])), "application/x-npy")
    single = post(url, npy(window()[0]), "application/x-npy")

    # THEN the windows are scored on their last frame and the response says the model's window
    body = InferenceResponse.model_validate_json(response.content)
    assert (body.temporal_window, [r.score for r in body.results]) == (3, [0.0, 155.0])
    assert (single.status_code, single.json()["message"]) == (
        400, ("frames for a temporal model (temporal_window=3) must be N x 3 x H x W x 3 or 3 x H x W x 3, "
              "got shape [16, 16, 3] (model: temporal_window=3, input_size=16x16)"),
    )


def test_a_model_failure_is_a_500_with_a_logged_traceback_and_the_server_stays_up(start_server, temporal_model_dir,
                                                                                      tmp_path):
    # GIVEN the server on a model that fails on windows whose first pixel is 13
    url = start_server(temporal_model_dir)

    # WHEN such a window is posted, then a good one
    failed = post(url, npy(window(first_pixel=13)), "application/x-npy")
    after = post(url, npy(window()), "application/x-npy")

    # THEN a 500 with a generic message, the traceback in the server's log, and the next request is answered
    assert (failed.status_code, failed.json()["message"]) == (
        500, "internal error while scoring the frames; see the endpoint log",
    )
    log = (tmp_path / "server-0.log").read_text()
    assert re.search(r"ERROR \S+: invocation failed\nTraceback \(most recent call last\):", log), log
    assert "model bug triggered by pixel 13" in log
    assert httpx.get(f"{url}/ping").status_code == 200
    assert after.status_code == 200
    assert InferenceResponse.model_validate_json(after.content).results == [FrameResult(
        score=155.0, regions=InferenceResponse.model_validate_json(after.content).results[0].regions)]


def test_sagemaker_model_server_workers_runs_several_processes(start_server, temporal_model_dir):
    # GIVEN the server with SAGEMAKER_MODEL_SERVER_WORKERS=2 (two processes, one model each)
    url = start_server(temporal_model_dir, SAGEMAKER_MODEL_SERVER_WORKERS="2")

    # WHEN 8 requests are posted, 4 at a time
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: post(url, npy(window()), "application/x-npy"), range(8)))

    # THEN every one is answered with the same score
    assert [(a.status_code, a.json()["results"][0]["score"]) for a in answers] == [(200, 155.0)] * 8


def test_sagemaker_model_server_timeout_answers_504(start_server, temporal_model_dir):
    # GIVEN a server whose SAGEMAKER_MODEL_SERVER_TIMEOUT no request can meet
    url = start_server(temporal_model_dir, SAGEMAKER_MODEL_SERVER_TIMEOUT="0.000001")

    # WHEN a request is posted THEN 504 in time, saying why; the server still answers /ping
    late = post(url, npy(window()), "application/x-npy")
    assert (late.status_code, late.json()["message"]) == (504, "the model did not answer within 1e-06 s")
    assert httpx.get(f"{url}/ping").status_code == 200


def test_a_malformed_sagemaker_variable_is_one_line_and_exit_1(tiny_model_dir):
    result = subprocess.run(
        [sys.executable, "-m", "inference.serve", "--model", str(tiny_model_dir), "--port", "0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={**__import__("os").environ, "SAGEMAKER_MODEL_SERVER_WORKERS": "many"},
    )
    assert (result.returncode, result.stderr) == (
        1, "error: $SAGEMAKER_MODEL_SERVER_WORKERS must be an integer, got 'many'\n",
    )


def test_answers_say_where_the_server_spent_the_time(server_url, scenes):
    # WHEN a batch is scored
    response = httpx.post(f"{server_url}/invocations", content=npy(scenes["normal"][:2]),
                          headers={"Content-Type": "application/x-npy"})
    # THEN the Server-Timing header names every phase of the request, in order, each with a duration
    phases = [entry.strip().split(";dur=") for entry in response.headers["server-timing"].split(",")]
    assert [name for name, _ in phases] == ["read", "queue", "decode", "predict", "encode", "resume"]
    assert all(float(ms) >= 0 for _, ms in phases)


def test_connections_to_the_server_socket_send_without_nagle() -> None:
    # GIVEN the server's listening socket, served by asyncio as uvicorn does
    import asyncio
    import socket

    from inference.serve import bind_socket

    listener = bind_socket("127.0.0.1", 0)
    seen: list[int] = []

    async def accept_one() -> None:
        loop = asyncio.get_running_loop()
        connected = asyncio.Event()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                connected.set()

        server = await loop.create_server(Probe, sock=listener)
        # WHEN a client connects
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        await asyncio.wait_for(connected.wait(), 5)
        writer.close()
        server.close()

    asyncio.run(accept_one())
    # THEN the accepted connection has TCP_NODELAY (else each response's body waits ~40 ms for an ACK)
    assert seen == [1]
