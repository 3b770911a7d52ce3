"""What a local run leaves in its moto server, saved to a folder and loaded into a fresh one.

moto keeps its state in the memory of the process that runs the server, so when `make demo` ends
the alerts of the run would be gone with it. `save_state(stack, folder)` writes what the run left
in S3 and DynamoDB; `restore_state(stack, folder)` puts it into a fresh stack (started with the
saved resource names, `SavedState.names`), so `python -m local.console --from-demo out/demo` shows the
run's own alerts, snapshots and clips:

    <folder>/state.json              what was saved: names, time, tables' keys, objects' content types
    <folder>/s3/<bucket>/<key>       every object of every bucket, byte for byte
    <folder>/dynamodb/<table>.jsonl  every item of every table, in DynamoDB's typed JSON as on the wire
                                     ({"S": ...}; binary values base64-encoded)

Kinesis, SNS and SQS are not saved: they hold messages in flight, which nothing reads after a run.
Saving writes to `<folder>.partial` and renames it into place, so a folder is never half-written; it
replaces an earlier save, never a folder that is not one.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from local.stack import LocalStack, ResourceNames

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
FORMAT = 1
RUN_STATE_DIR = "state"
"""In a demo's out folder (`--out`, default out/demo): the saved state."""
CONSOLE_FILE = "console.json"
"""In a demo's out folder: `{"token": ..., "first_alert_id": ...}`, the console login the demo printed
(mode 0600); `python -m local.console --from-demo` uses it."""


class StateError(RuntimeError):
    """The folder holds no saved state, or one this code cannot read; the message says which."""


@dataclass(frozen=True)
class SavedState:
    folder: Path
    names: ResourceNames
    saved_at: str
    objects: dict[str, int] = field(default_factory=dict)
    """Objects per bucket."""
    items: dict[str, int] = field(default_factory=dict)
    """Items per table."""


def _object_path(root: Path, bucket: str, key: str) -> Path:
    parts = PurePosixPath(key).parts
    if not key or key.endswith("/") or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StateError(f"s3://{bucket}/{key}: this key cannot be saved as a file")
    return root / "s3" / bucket / Path(*parts)


def _binary_mapped(value: dict[str, Any], convert: Callable[[Any], Any]) -> dict[str, Any]:
    """One attribute value with `convert` applied to its binary parts (B, BS, inside M and L)."""
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": convert(inner)}
    if kind == "BS":
        return {"BS": [convert(b) for b in inner]}
    if kind == "M":
        return {"M": {name: _binary_mapped(v, convert) for name, v in inner.items()}}
    if kind == "L":
        return {"L": [_binary_mapped(v, convert) for v in inner]}
    return value


def _to_wire(value: dict[str, Any]) -> dict[str, Any]:
    """One attribute value as DynamoDB's JSON wire format has it (boto3 hands binary values as bytes)."""
    return _binary_mapped(value, lambda data: base64.b64encode(data).decode())


def _from_wire(value: dict[str, Any]) -> dict[str, Any]:
    return _binary_mapped(value, base64.b64decode)


def _table_spec(description: dict[str, Any]) -> dict[str, Any]:
    """`create_table` arguments that recreate a table's keys and indexes (on demand)."""
    spec: dict[str, Any] = {
        "TableName": description["TableName"],
        "KeySchema": description["KeySchema"],
        "AttributeDefinitions": description["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    indexes = [
        {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
        for g in description.get("GlobalSecondaryIndexes", [])
    ]
    if indexes:
        spec["GlobalSecondaryIndexes"] = indexes
    return spec


def save_state(stack: LocalStack, folder: Path) -> SavedState:
    """Write every S3 object and DynamoDB item of `stack` to `folder` (replacing an earlier save)."""
    folder = Path(folder)
    if folder.exists() and not (folder / STATE_FILE).is_file():
        raise StateError(f"{folder} exists and holds no saved state ({STATE_FILE}): not replacing it")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    s3, dynamodb = stack.client("s3"), stack.client("dynamodb")

    buckets: dict[str, list[dict[str, Any]]] = {}
    for bucket in sorted(b["Name"] for b in s3.list_buckets()["Buckets"]):
        objects = buckets.setdefault(bucket, [])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for listed in page.get("Contents", []):
                key = listed["Key"]
                path = _object_path(partial, bucket, key)
                response = s3.get_object(Bucket=bucket, Key=key)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(response["Body"].read())
                objects.append({"key": key, "content_type": response.get("ContentType"),
                                "metadata": response.get("Metadata", {})})

    tables: dict[str, dict[str, Any]] = {}
    (partial / "dynamodb").mkdir()
    for table in sorted(dynamodb.list_tables()["TableNames"]):
        count = 0
        with (partial / "dynamodb" / f"{table}.jsonl").open("w") as out:
            for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
                for item in page["Items"]:
                    wire = {name: _to_wire(value) for name, value in item.items()}
                    out.write(json.dumps(wire, sort_keys=True) + "\n")
                    count += 1
        tables[table] = {"spec": _table_spec(dynamodb.describe_table(TableName=table)["Table"]), "items": count}

    saved_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    manifest = {
        "format": FORMAT,
        "saved_at": saved_at,
        "names": asdict(stack.names),
        "buckets": buckets,
        "tables": tables,
    }
    (partial / STATE_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)
    state = SavedState(folder, stack.names, saved_at, {b: len(o) for b, o in buckets.items()},
                       {t: v["items"] for t, v in tables.items()})
    logger.info("saved %d objects and %d items to %s", sum(state.objects.values()), sum(state.items.values()), folder)
    return state


def _manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise StateError(f"no saved state in {folder} ({STATE_FILE} not found)")
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("format") != FORMAT:
            raise StateError(f"{path} has format {manifest.get('format')!r}; this code reads format {FORMAT}")
        return manifest  # type: ignore[no-any-return]
    except (OSError, ValueError) as exc:
        raise StateError(f"{path} cannot be read: {exc}") from exc


def read_state(folder: Path) -> SavedState:
    """What `folder` holds, without loading it (the names to start the stack with)."""
    manifest = _manifest(folder)
    try:
        names = ResourceNames(**manifest["names"])
    except TypeError as exc:
        raise StateError(f"{Path(folder) / STATE_FILE}: resource names do not match this code: {exc}") from exc
    return SavedState(Path(folder), names, manifest["saved_at"],
                      {b: len(o) for b, o in manifest["buckets"].items()},
                      {t: v["items"] for t, v in manifest["tables"].items()})


def restore_state(stack: LocalStack, folder: Path) -> SavedState:
    """Load a saved state into `stack` (fresh, started with `read_state(folder).names`): every bucket
    and table that is missing is created, then every object and item is put back as it was."""
    folder = Path(folder)
    state = read_state(folder)
    manifest = _manifest(folder)
    s3, dynamodb = stack.client("s3"), stack.client("dynamodb")
    existing_buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    for bucket, objects in manifest["buckets"].items():
        if bucket not in existing_buckets:
            s3.create_bucket(Bucket=bucket)
        for entry in objects:
            extra = {"ContentType": entry["content_type"]} if entry.get("content_type") else {}
            body = _object_path(folder, bucket, entry["key"]).read_bytes()
            s3.put_object(Bucket=bucket, Key=entry["key"], Body=body, Metadata=entry.get("metadata", {}), **extra)
    existing_tables = set(dynamodb.list_tables()["TableNames"])
    for table, saved in manifest["tables"].items():
        if table not in existing_tables:
            dynamodb.create_table(**saved["spec"])
        with (folder / "dynamodb" / f"{table}.jsonl").open() as lines:
            for line in lines:
                if line.strip():
                    item = {name: _from_wire(value) for name, value in json.loads(line).items()}
                    dynamodb.put_item(TableName=table, Item=item)
    logger.info("restored %d objects and %d items from %s (saved %s)", sum(state.objects.values()),
                sum(state.items.values()), folder, state.saved_at)
    return state
