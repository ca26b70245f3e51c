"""The audit record: one small JSON object per ingested source file, for freshness and counts.

Written by the Lambda and the backfill after the rows are in the lake; read by Dagster's sensors
and checks, the stack's status line and the benchmarks. Records read = rows written + records
quarantined, except for a file rejected whole: 0 read, 1 quarantined (the file itself).
"""

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from lake_contract import layout


@dataclass(frozen=True)
class AuditRecord:
    source_bucket: str
    source_key: str
    size_bytes: int
    event_time: str | None  # ISO-8601, as S3 stamped the notification; None for a backfill
    started_at: datetime
    finished_at: datetime
    records_read: int
    records_quarantined: int
    file_rejected: bool
    rows_written: dict[str, int]  # table -> rows
    # UTC day -> table -> rows, for per-partition reporting
    rows_per_day: dict[str, dict[str, int]] = field(default_factory=dict)
    latest_transaction_at: datetime | None = None
    outputs: list[str] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float:
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    @property
    def lag_seconds(self) -> float | None:
        """From the S3 PUT's event to the rows being in the lake."""
        if not self.event_time:
            return None
        since_event = self.finished_at - datetime.fromisoformat(self.event_time)
        return round(since_event.total_seconds(), 3)

    @property
    def raw_records(self) -> int:
        """What the source's raw log holds, in records: a file rejected whole (corrupt gzip, not
        UTF-8) has no readable records, and counts as the one quarantine record that holds it."""
        return self.records_quarantined if self.file_rejected else self.records_read

    @property
    def transactions(self) -> int:
        return self.rows_written.get("transactions", 0)

    @property
    def key(self) -> str:
        """Where the record lives: audit keys sort by finish time (see layout.audit_key)."""
        finished_ms = int(self.finished_at.timestamp() * 1000)
        return layout.audit_key(finished_ms, self.finished_at.date(), self.source_key)

    def home_day(self) -> date:
        """The day the source's records belong to: its first day of rows, else its finish day."""
        if self.rows_per_day:
            return date.fromisoformat(min(self.rows_per_day))
        return self.finished_at.date()

    def to_json(self) -> bytes:
        body: dict[str, Any] = asdict(self)
        for name in ("started_at", "finished_at", "latest_transaction_at"):
            body[name] = body[name].isoformat() if body[name] else None
        body["duration_seconds"] = self.duration_seconds
        body["lag_seconds"] = self.lag_seconds
        return json.dumps(body).encode()

    @classmethod
    def from_json(cls, body: bytes | str) -> "AuditRecord":
        raw = json.loads(body)
        latest = raw.get("latest_transaction_at")
        return cls(
            source_bucket=raw["source_bucket"],
            source_key=raw["source_key"],
            size_bytes=raw["size_bytes"],
            event_time=raw.get("event_time"),
            started_at=datetime.fromisoformat(raw["started_at"]),
            finished_at=datetime.fromisoformat(raw["finished_at"]),
            records_read=raw["records_read"],
            records_quarantined=raw["records_quarantined"],
            file_rejected=raw.get("file_rejected", False),
            rows_written=raw["rows_written"],
            rows_per_day=raw.get("rows_per_day", {}),
            latest_transaction_at=datetime.fromisoformat(latest) if latest else None,
            outputs=raw.get("outputs", []),
        )
