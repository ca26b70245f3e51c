"""The audit record of one ingestion, built from the transform's result and what was written."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import pyarrow.compute as pc

from lake_contract import schema
from lake_contract.audit import AuditRecord
from lambda_ingest.transform import TransformResult


@dataclass(frozen=True)
class SourceCounts:
    """What the audit record tells of one source's rows, counted once from its transform's
    result, so the rows themselves need not be kept until the record is written."""

    records_read: int
    records_quarantined: int
    file_rejected: bool
    rows_written: dict[str, int]  # table -> rows
    rows_per_day: dict[str, dict[str, int]]  # day -> table -> rows
    latest_transaction_at: datetime | None

    @classmethod
    def of(cls, result: TransformResult) -> "SourceCounts":
        per_day: dict[str, dict[str, int]] = defaultdict(dict)
        for name in ("transactions", "transaction_items"):
            counts = pc.value_counts(getattr(result, name)[schema.PARTITION.name]).to_pylist()
            for entry in counts:
                per_day[entry["values"].isoformat()][name] = entry["counts"]
        return cls(
            records_read=result.records_read,
            records_quarantined=len(result.rejects),
            file_rejected=result.file_rejected,
            rows_written={
                "transactions": result.transactions.num_rows,
                "transaction_items": result.transaction_items.num_rows,
            },
            rows_per_day=dict(per_day),
            latest_transaction_at=pc.max(result.transactions["transaction_datetime"]).as_py(),
        )


def audit_record(
    *,
    bucket: str,
    source_key: str,
    size: int,
    event_time: str | None,
    started_at: datetime,
    finished_at: datetime,
    counts: SourceCounts,
    outputs: list[str],
) -> AuditRecord:
    """Counts, keys and lags of one ingestion: raw records = rows written + quarantined."""
    return AuditRecord(
        source_bucket=bucket,
        source_key=source_key,
        size_bytes=size,
        event_time=event_time,
        started_at=started_at,
        finished_at=finished_at,
        records_read=counts.records_read,
        records_quarantined=counts.records_quarantined,
        file_rejected=counts.file_rejected,
        rows_written=dict(counts.rows_written),
        rows_per_day=counts.rows_per_day,
        latest_transaction_at=counts.latest_transaction_at,
        outputs=outputs,
    )
