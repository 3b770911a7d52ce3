"""The Vigil worker: reads one camera, samples and motion-gates its frames, scores them on the
SageMaker endpoint, applies the alert policy, and puts alerts on the Kinesis Data Stream `alerts`.

One module per stage: `sources` (decode) -> `sampler` -> `motion` -> `detector` -> `policy` ->
`snapshot` -> `publisher`, wired together by `pipeline`; `python -m worker` is the entry point."""
