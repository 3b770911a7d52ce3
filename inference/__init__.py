"""Vigil's SageMaker inference handler (`inference.inference`) and a local server with the SageMaker
container contract (`python -m inference.serve`: `GET /ping`, `POST /invocations`).

Loads the self-contained artifact written by `python -m training`; never imports `training/`.
"""
