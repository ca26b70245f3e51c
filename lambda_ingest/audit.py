"""The audit record: one small JSON object per ingested source file, for freshness and counts."""

from datetime import datetime
from typing import Any

import pyarrow.compute as pc

from lambda_ingest.transform import TransformResult


def _seconds_between(earlier: str | None, later: datetime) -> float | None:
    if not earlier:
        return None
    return round((later - datetime.fromisoformat(earlier)).total_seconds(), 3)


def audit_record(
    *,
    bucket: str,
    source_key: str,
    size: int,
    event_time: str | None,
    started_at: datetime,
    finished_at: datetime,
    result: TransformResult,
    outputs: list[str],
    rows_per_day: dict[str, dict[str, int]],
) -> dict[str, Any]:
    """Counts, keys and lags of one ingestion: raw records = rows written + quarantined."""
    latest = pc.max(result.transactions["transaction_datetime"]).as_py()
    return {
        "source_bucket": bucket,
        "source_key": source_key,
        "size_bytes": size,
        "event_time": event_time,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_seconds": round((finished_at - started_at).total_seconds(), 3),
        "lag_seconds": _seconds_between(event_time, finished_at),  # S3 PUT -> rows in the lake
        "records_read": result.records_read,
        "records_quarantined": len(result.rejects),
        "file_rejected": result.file_rejected,
        "rows_written": {
            "transactions": result.transactions.num_rows,
            "transaction_items": result.transaction_items.num_rows,
        },
        "rows_per_day": rows_per_day,  # UTC day -> table -> rows, for per-partition reporting
        "latest_transaction_at": latest.isoformat() if latest else None,
        "outputs": outputs,
    }
