"""The audit record of one ingestion, built from the transform's result and what was written."""

from datetime import datetime

import pyarrow.compute as pc

from lake_contract.audit import AuditRecord
from lambda_ingest.transform import TransformResult


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
) -> AuditRecord:
    """Counts, keys and lags of one ingestion: raw records = rows written + quarantined."""
    return AuditRecord(
        source_bucket=bucket,
        source_key=source_key,
        size_bytes=size,
        event_time=event_time,
        started_at=started_at,
        finished_at=finished_at,
        records_read=result.records_read,
        records_quarantined=len(result.rejects),
        file_rejected=result.file_rejected,
        rows_written={
            "transactions": result.transactions.num_rows,
            "transaction_items": result.transaction_items.num_rows,
        },
        rows_per_day=rows_per_day,
        latest_transaction_at=pc.max(result.transactions["transaction_datetime"]).as_py(),
        outputs=outputs,
    )
