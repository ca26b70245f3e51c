"""The Lambda entry point: S3 notifications (direct or via SQS) -> lake rows, quarantine, audit.

Thin on purpose: events.py unpacks, transform.py converts, lake_contract.s3 talks to S3. Bad data is
never an error (it goes to quarantine); only failures worth a retry fail a message.
"""

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from lake_contract import layout, s3
from lake_contract.audit import AuditRecord
from lake_contract.parquet import parquet_bytes
from lake_contract.quarantine import quarantine_ndjson
from lambda_ingest import events, settings
from lambda_ingest.audit import audit_record
from lambda_ingest.day_files import split_by_day
from lambda_ingest.transform import TransformResult, oversized_reason, rejected_file, transform

logger = logging.getLogger("lambda_ingest")
logger.setLevel(logging.INFO)

_sources = ThreadPoolExecutor(max_workers=8, thread_name_prefix="source")
_writes = ThreadPoolExecutor(max_workers=16, thread_name_prefix="write")


def _log(level: int, event: str, **fields: Any) -> None:
    """One JSON object per line, so CloudWatch Logs Insights can query the fields."""
    logger.log(level, json.dumps({"event": event, **fields}, default=str))


def _read(
    source: events.SourceObject, max_bytes: int, started: datetime
) -> tuple[int, TransformResult] | None:
    """The source's size and its rows; None when it vanished. A key that is not a plain path is
    never read, nor more than max_bytes of a body: either is quarantined whole."""
    problem = layout.key_problem(source.key)
    if problem:
        return 0, rejected_file(f"the source key {problem}, so it is not read")
    try:
        data = s3.LakeBucket(source.bucket).read_if_present(source.key, max_bytes)
    except s3.ObjectTooLarge as exc:
        return exc.size, rejected_file(oversized_reason(exc.size, exc.limit))
    if data is None:
        return None
    return len(data), transform(data, source.key, started, max_bytes)


def ingest(
    source: events.SourceObject,
    lake_bucket: str,
    max_source_bytes: int = settings.DEFAULT_MAX_SOURCE_BYTES,
) -> AuditRecord | None:
    """Ingests one raw log; returns its audit record (None when there was nothing to do).

    Every output key derives from the source key, so a redelivery overwrites, never adds.
    """
    if source.key.startswith(layout.OUTPUT_PREFIXES):
        _log(logging.WARNING, "skipped_own_output", key=source.key)  # never recurse
        return None
    if not source.key.startswith(layout.RAW):
        _log(logging.WARNING, "skipped_not_raw", key=source.key)  # not the lake's input
        return None
    started = datetime.now(UTC)
    clock = time.perf_counter()
    lake = s3.LakeBucket(lake_bucket, writable=layout.OUTPUT_PREFIXES)
    read = _read(source, max_source_bytes, started)
    if read is None:
        _log(logging.WARNING, "source_missing", bucket=source.bucket, key=source.key)
        return None
    size, result = read

    days = split_by_day(result)
    writes = [
        (layout.table_key(table, day.day, source.key), parquet_bytes(rows))
        for day in days
        for table, rows in day.tables().items()
    ]
    quarantine_key = layout.quarantine_key(source.key)
    pending = [
        _writes.submit(lake.write, key, body, "application/x-parquet") for key, body in writes
    ]
    if result.rejects:
        body = quarantine_ndjson(source.key, result.rejects, started)
        pending.append(_writes.submit(lake.write, quarantine_key, body, "application/x-ndjson"))
    else:  # a source rewritten since its last ingestion must not keep stale rejects
        pending.append(_writes.submit(lake.delete, quarantine_key))
    for write in pending:
        write.result()  # raises the first failure: the audit record is written only on success

    finished = datetime.now(UTC)
    outputs = [key for key, _ in writes] + ([quarantine_key] if result.rejects else [])
    record = audit_record(
        bucket=source.bucket,
        source_key=source.key,
        size=size,
        event_time=source.event_time,
        started_at=started,
        finished_at=finished,
        result=result,
        outputs=outputs,
        rows_per_day={
            day.day.isoformat(): {t: rows.num_rows for t, rows in day.tables().items()}
            for day in days
        },
    )
    lake.write(record.key, record.to_json(), "application/json")
    _log(
        logging.INFO,
        "ingested",
        key=source.key,
        records=result.records_read,
        transactions=record.rows_written["transactions"],
        items=record.rows_written["transaction_items"],
        quarantined=record.records_quarantined,
        duration_ms=round((time.perf_counter() - clock) * 1000, 1),
        lag_seconds=record.lag_seconds,
    )
    return record


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Ingests every object the event names; reports SQS messages that should be retried."""
    lake_bucket_override = os.environ.get("LAKE_BUCKET") or None
    max_source_bytes = settings.max_source_bytes()
    objects, unreadable = events.sources(event)
    failed: dict[str, str] = {u.message_id: u.reason for u in unreadable}
    for u in unreadable:
        _log(logging.ERROR, "unreadable_message", message_id=u.message_id, reason=u.reason)

    def attempt(source: events.SourceObject) -> BaseException | None:
        try:
            ingest(source, lake_bucket_override or source.bucket, max_source_bytes)
        except Exception as exc:
            kind = "transient" if s3.is_transient(exc) else "unexpected"
            _log(logging.ERROR, f"{kind}_failure", key=source.key, error=repr(exc))
            return exc
        return None

    outcomes = list(_sources.map(attempt, objects))
    for source, error in zip(objects, outcomes, strict=True):
        if error is None:
            continue
        if source.message_id is None:
            raise error  # direct invocation: let Lambda's own retry run it again
        failed[source.message_id] = repr(error)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed)]}
