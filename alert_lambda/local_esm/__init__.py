"""The local twin of Lambda's Kinesis event source mapping (`mapping`), and its command line
(`python -m alert_lambda.local_esm`, `__main__`). Not shipped in the Lambda zip: on AWS the Lambda
service is the mapping."""

from alert_lambda.local_esm.mapping import EventSourceMapping, EventSourceMappingError, MappingConfig

__all__ = ["EventSourceMapping", "EventSourceMappingError", "MappingConfig"]
