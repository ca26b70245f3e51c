"""The quarantine record: one JSON line per rejected record (or whole file), with its reason."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class Reject:
    """A record (or, with no line_number, a whole file) kept out of the lake, and why."""

    reason: str
    line_number: int | None = None  # 1-based line in the source file
    transaction_id: str | None = None
    raw: str | None = None  # the line as received, cut to a bounded length by the transform

    def to_dict(self) -> dict[str, Any]:
        return {
            "line_number": self.line_number,
            "transaction_id": self.transaction_id,
            "reason": self.reason,
            "raw": self.raw,
        }


def _field(name: str, type_: pa.DataType, description: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": description})


QUARANTINE_TABLE = "quarantine"  # the Glue table (and local view) over every quarantine object

# One line of quarantine/<source>.ndjson, as Glue's JSON table and the local engine read it.
QUARANTINE_RECORD = pa.schema(
    [
        _field("source_key", pa.string(), "key of the raw log the record came from"),
        _field("ingested_at", pa.string(), "when it was rejected: ISO-8601 UTC, milliseconds"),
        _field("line_number", pa.int32(), "1-based line in the source; null: the whole file", True),
        _field("transaction_id", pa.string(), "the record's transaction_id, if it had one", True),
        _field("reason", pa.string(), "why it was rejected, naming the field"),
        _field("raw", pa.string(), "the line as received, cut at 64 KiB", True),
    ]
)


def quarantine_ndjson(source_key: str, rejects: list[Reject], ingested_at: datetime) -> bytes:
    """Rejects as NDJSON; each line names its source, so any quarantine object stands alone."""
    stamp = ingested_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    lines = (
        json.dumps(
            {"source_key": source_key, "ingested_at": stamp, **reject.to_dict()},
            ensure_ascii=False,
        )
        for reject in rejects
    )
    return "".join(line + "\n" for line in lines).encode("utf-8")


def quarantine_records(body: bytes) -> list[dict[str, Any]]:
    """The records of one quarantine object, in order (blank lines are not records)."""
    return [json.loads(line) for line in body.splitlines() if line.strip()]
