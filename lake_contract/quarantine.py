"""The quarantine record: one JSON line per rejected record (or whole file), with its reason."""

import json
from dataclasses import dataclass
from typing import Any


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


def quarantine_ndjson(source_key: str, rejects: list[Reject]) -> bytes:
    """Rejects as NDJSON; each line names its source, so any quarantine object stands alone."""
    lines = (
        json.dumps({"source_key": source_key, **reject.to_dict()}, ensure_ascii=False)
        for reject in rejects
    )
    return "".join(line + "\n" for line in lines).encode("utf-8")


def quarantine_records(body: bytes) -> list[dict[str, Any]]:
    """The records of one quarantine object, in order (blank lines are not records)."""
    return [json.loads(line) for line in body.splitlines() if line.strip()]
