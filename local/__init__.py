"""The local, embedded deployment: the same code as on AWS, with a moto server on 127.0.0.1 standing
in for the AWS APIs, the local inference server for the SageMaker endpoint, and the local event
source mapping (`alert_lambda.local_esm`) for Lambda's Kinesis trigger."""

from pathlib import Path

SAMPLE_VIDEO = Path(__file__).resolve().parent / "sample" / "one-by-one-person-detection.mp4"
"""The bundled sample camera (Intel IoT DevKit sample-videos, CC BY 4.0; see sample/README)."""
