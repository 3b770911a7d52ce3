"""`python -m inference.serve` in a subprocess on a free port: the SageMaker container contract over
real HTTP, and boto3's sagemaker-runtime `invoke_endpoint` against it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import numpy as np
import pytest
from PIL import Image

from contracts.inference import MAX_PAYLOAD_BYTES, InferenceResponse

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
        (npy(np.zeros((17, 4, 4, 3), np.uint8)), "application/x-npy", 413, "batch of 17 frames is over the limit of 16"),
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
        "Message": "unsupported content type 'text/plain'; use application/x-npy, image/jpeg or image/png",
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
