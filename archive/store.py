"""The archive bucket: clips uploaded to a temporary key and copied into place, and manifests
changed with conditional writes (`If-Match` / `If-None-Match`), so two writers (the archiver and
`python -m archive.feedback`) never lose each other's lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from archive.errors import ArchiveError
from archive.keys import tmp_key
from contracts.manifest import ManifestLine

logger = logging.getLogger(__name__)

_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
MAX_MANIFEST_WRITES = 8

ManifestChange = Callable[[list[ManifestLine]], list[ManifestLine]]


def merge_lines(existing: list[ManifestLine], new: list[ManifestLine]) -> list[ManifestLine]:
    """`existing` with each of `new` in place of the line with its `source-ref` (appended when
    there is none). A re-archived clip keeps the labelled `events` its old line had."""
    merged = list(existing)
    for line in new:
        index = next((i for i, old in enumerate(merged) if old.source_ref == line.source_ref), None)
        if index is None:
            merged.append(line)
            continue
        if not line.events and merged[index].events:
            line = line.model_copy(update={"events": merged[index].events})
        merged[index] = line
    return merged


class ArchiveStore:
    def __init__(self, bucket: str, s3_client: Any = None) -> None:
        self.bucket = bucket
        self.s3 = s3_client or boto3.client("s3")

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_clip(self, path: Path, key: str) -> None:
        """Upload to `tmp/`, copy into place, delete the temporary: `key` never holds part of a clip."""
        temporary = tmp_key(path.suffix)
        self.s3.upload_file(str(path), self.bucket, temporary, ExtraArgs={"ContentType": "video/mp4"})
        try:
            self.s3.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": temporary})
        finally:
            self.s3.delete_object(Bucket=self.bucket, Key=temporary)

    def get_bytes(self, key: str) -> tuple[bytes, str] | None:
        """(body, ETag) of `key`, or None when there is no such object."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None
        return response["Body"].read(), response["ETag"]

    def get_json(self, key: str) -> Any:
        found = self.get_bytes(key)
        return None if found is None else json.loads(found[0])

    def put_json(self, key: str, body: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode(), ContentType="application/json")

    def download(self, key: str, path: Path) -> Path:
        self.s3.download_file(self.bucket, key, str(path))
        return path

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def read_manifest(self, key: str) -> tuple[list[ManifestLine], str | None]:
        found = self.get_bytes(key)
        if found is None:
            return [], None
        body, etag = found
        try:
            lines = [ManifestLine.model_validate_json(raw) for raw in body.decode().splitlines() if raw.strip()]
        except ValueError as exc:
            raise ArchiveError(f"manifest {self.uri(key)} is corrupt: {exc}") from exc
        return lines, etag

    def change_manifest(self, key: str, change: ManifestChange) -> list[ManifestLine]:
        """Apply `change` to the manifest's lines and write them back only if the manifest did not
        change meanwhile (else re-read and retry). No write when nothing changes."""
        for _ in range(MAX_MANIFEST_WRITES):
            lines, etag = self.read_manifest(key)
            new = change(lines)
            if [line.to_json() for line in new] == [line.to_json() for line in lines]:
                return new
            body = "".join(line.to_json() + "\n" for line in new).encode()
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.s3.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType="application/jsonl", **condition
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in _CONFLICT_CODES:
                    logger.info("manifest %s changed meanwhile (%s); retrying", key, code)
                    continue
                raise
            return new
        raise ArchiveError(f"manifest {self.uri(key)} kept changing; gave up after {MAX_MANIFEST_WRITES} tries")

    def upsert_lines(self, key: str, lines: list[ManifestLine]) -> list[ManifestLine]:
        return self.change_manifest(key, lambda existing: merge_lines(existing, lines))
