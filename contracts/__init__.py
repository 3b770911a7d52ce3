"""Contracts shared by two or more Vigil packages, each defined once, each with a schema_version.

- `contracts.inference`: the SageMaker endpoint's request content types and JSON response.
- `contracts.alert`: the alert record the worker puts on Kinesis and `alert_lambda` consumes.
- `contracts.manifest`: one line of a clip manifest (archiver writes, training reads).
- `contracts.camera_status`: a camera's status item in the state table (worker writes, console reads).
- `contracts.score_trace`: the per-frame scores around an alert (worker writes next to the clip, console reads).
"""
