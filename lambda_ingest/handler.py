"""The Lambda entry point: S3 notifications (direct or via SQS) -> lake rows, quarantine, audit.

Thin on purpose: events.py unpacks, transform.py converts, committer.py commits a batch's rows
to the Iceberg tables in one snapshot per table, lake_contract.s3 talks to S3. Bad data is
never an error (it goes to quarantine); only failures worth a retry fail a message.
"""

import functools
import json
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lake_contract import layout, s3, tables
from lake_contract.audit import AuditRecord
from lake_contract.pandas_free import leave_pandas_out
from lake_contract.quarantine import quarantine_ndjson
from lake_contract.tables import LakeTables
from lambda_ingest import events, settings
from lambda_ingest.audit import SourceCounts, audit_record
from lambda_ingest.committer import (
    COMMIT_ORDER,
    Committed,
    Staged,
    Unchanged,
    combined,
    commit_sources,
    commit_staged,
    stage,
    unchanged_sources,
)
from lambda_ingest.transform import TransformResult, oversized_reason, rejected_file, transform

# Before the first batch builds an array: the function never uses pandas (the template sets it).
leave_pandas_out()

logger = logging.getLogger("lambda_ingest")
logger.setLevel(logging.INFO)

_sources = ThreadPoolExecutor(max_workers=8, thread_name_prefix="source")
_writes = ThreadPoolExecutor(max_workers=16, thread_name_prefix="write")


def _log(level: int, event: str, **fields: Any) -> None:
    """One JSON object per line, so CloudWatch Logs Insights can query the fields."""
    logger.log(level, json.dumps({"event": event, **fields}, default=str))


@functools.cache
def lake_tables(database: str) -> LakeTables:
    """Loaded once per container and database: a table's load costs a catalog call and a
    metadata read, a refresh before each commit only the latter when nothing changed."""
    return LakeTables(tables.glue_catalog(), database)


def warm_up(database: str | None = None) -> None:
    """Pays before the first event what the first invocation would: the catalog, the tables it
    commits to, and the transform's first Arrow arrays (pyarrow's lazy imports take seconds).
    A runtime calls it before it polls; in Lambda the init phase is the place."""
    lake = lake_tables(database or tables.database_from_environment())
    for name in COMMIT_ORDER:
        lake.current(name)
    transform(b"{}\n", f"{layout.RAW_INCOMING}dt=2000-01-01/warm-up.ndjson")


@dataclass(frozen=True)
class Converted:
    """One source read and transformed, not yet in the lake."""

    source: events.SourceObject
    lake_bucket: str
    size: int
    started_at: datetime
    result: TransformResult

    @functools.cached_property
    def counts(self) -> SourceCounts:
        return SourceCounts.of(self.result)


@dataclass(frozen=True)
class StagedSource:
    """One source converted, its rejects quarantined and its rows written as data files of
    their own, in no snapshot yet: all a backfill keeps of a source until it commits."""

    source: events.SourceObject
    lake_bucket: str
    size: int
    started_at: datetime
    counts: SourceCounts
    staged: Staged


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


def convert(
    source: events.SourceObject,
    lake_bucket: str,
    max_source_bytes: int = settings.DEFAULT_MAX_SOURCE_BYTES,
) -> Converted | None:
    """Reads and transforms one raw log; None when there is nothing to ingest."""
    if source.key.startswith(layout.OUTPUT_PREFIXES):
        _log(logging.WARNING, "skipped_own_output", key=source.key)  # never recurse
        return None
    if not source.key.startswith(layout.RAW):
        _log(logging.WARNING, "skipped_not_raw", key=source.key)  # not the lake's input
        return None
    started = datetime.now(UTC)
    read = _read(source, max_source_bytes, started)
    if read is None:
        _log(logging.WARNING, "source_missing", bucket=source.bucket, key=source.key)
        return None
    size, result = read
    return Converted(source, lake_bucket, size, started, result)


def _outputs(bucket: str) -> s3.LakeBucket:
    """The lake bucket as the function may write it: its own prefixes only."""
    return s3.LakeBucket(bucket, writable=layout.OUTPUT_PREFIXES)


def _write_quarantine(item: Converted) -> None:
    lake, key = _outputs(item.lake_bucket), layout.quarantine_key(item.source.key)
    if item.result.rejects:
        body = quarantine_ndjson(item.source.key, item.result.rejects, item.started_at)
        lake.write(key, body, "application/x-ndjson")
    else:  # a source rewritten since its last ingestion must not keep stale rejects
        lake.delete(key)


def land(batch: list[Converted], database: str) -> list[AuditRecord]:
    """Quarantine, one commit for every source's rows, then one audit record per source: the
    audit record says the rows are in, so it is written only after the commit succeeded. A
    source delivered again and unchanged is in already: it is audited again, not committed."""
    if not batch:
        return []
    # One source twice in a batch (a redelivery beside the first delivery) is committed once.
    batch = list({item.source.key: item for item in batch}.values())
    clock = time.perf_counter()
    lake = lake_tables(database)
    try:
        unchanged = unchanged_sources(lake, [(item.source.key, item.result) for item in batch])
    except Exception as exc:  # e.g. a file of a stale snapshot gone: the commit replaces them
        _log(logging.WARNING, "unchanged_check_failed", error=repr(exc))
        unchanged = Unchanged()
    changed = [item for item in batch if item.source.key not in unchanged.sources]
    for pending in [_writes.submit(_write_quarantine, item) for item in changed]:
        pending.result()  # raises the first failure: nothing is committed without its rejects
    committing = time.perf_counter()
    results = [(item.source.key, item.result) for item in changed]
    committed = commit_sources(lake, results, {}) if changed else Committed()
    return _audited(batch, committed, database, clock, committing, unchanged)


def stage_source(item: Converted, database: str) -> StagedSource:
    """Quarantines one source's rejects and writes its rows as data files of their own; the
    rows are not kept (land_staged commits the files)."""
    _write_quarantine(item)
    staged = stage(lake_tables(database), [(item.source.key, item.result)], foldable=False)
    return StagedSource(
        item.source, item.lake_bucket, item.size, item.started_at, item.counts, staged
    )


def land_staged(batch: list[StagedSource], database: str) -> list[AuditRecord]:
    """One commit for the files of every staged source, then one audit record per source."""
    if not batch:
        return []
    clock = time.perf_counter()
    committed = commit_staged(lake_tables(database), combined([s.staged for s in batch]), {})
    return _audited(batch, committed, database, clock, clock)


def _audited(
    batch: Sequence[Converted | StagedSource],
    committed: Committed,
    database: str,
    clock: float,
    committing: float,
    unchanged: Unchanged | None = None,
) -> list[AuditRecord]:
    """The batch's audit records, written once its commit is in, and logged: each names the
    snapshots holding its rows (the commit's, or where an unchanged source was found)."""
    commit_ms = round((time.perf_counter() - committing) * 1000, 1)
    finished = datetime.now(UTC)

    unchanged = unchanged or Unchanged()

    def snapshots(key: str) -> dict[str, int]:
        return unchanged.snapshots if key in unchanged.sources else committed.snapshots

    records = [
        audit_record(
            bucket=item.source.bucket,
            source_key=item.source.key,
            size=item.size,
            event_time=item.source.event_time,
            started_at=item.started_at,
            finished_at=finished,
            counts=item.counts,
            outputs=[f"{database}.{t}@{s}" for t, s in snapshots(item.source.key).items()]
            + ([layout.quarantine_key(item.source.key)] if item.counts.records_quarantined else []),
        )
        for item in batch
    ]
    audits = [
        _writes.submit(_outputs(item.lake_bucket).write, r.key, r.to_json(), "application/json")
        for item, r in zip(batch, records, strict=True)
    ]
    for pending in audits:
        pending.result()
    for record in records:
        _log(
            logging.INFO,
            "ingested",
            key=record.source_key,
            records=record.records_read,
            transactions=record.rows_written["transactions"],
            items=record.rows_written["transaction_items"],
            quarantined=record.records_quarantined,
            replaced=record.source_key in committed.replaced_sources,
            unchanged=record.source_key in unchanged.sources,
            batch_sources=len(batch),
            batch_ms=round((time.perf_counter() - clock) * 1000, 1),
            commit_ms=commit_ms,
            lag_seconds=record.lag_seconds,
        )
    return records


def ingest(
    source: events.SourceObject,
    lake_bucket: str,
    max_source_bytes: int = settings.DEFAULT_MAX_SOURCE_BYTES,
) -> AuditRecord | None:
    """Ingests one raw log on its own; returns its audit record (None: nothing to do)."""
    converted = convert(source, lake_bucket, max_source_bytes)
    records = land([converted], tables.database_from_environment()) if converted else []
    return records[0] if records else None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Ingests every object the event names in one commit; reports SQS messages to retry."""
    lake_bucket_override = os.environ.get("LAKE_BUCKET") or None
    max_source_bytes = settings.max_source_bytes()
    objects, unreadable = events.sources(event)
    failed: dict[str, str] = {u.message_id: u.reason for u in unreadable}
    for u in unreadable:
        _log(logging.ERROR, "unreadable_message", message_id=u.message_id, reason=u.reason)

    def attempt(source: events.SourceObject) -> Converted | BaseException | None:
        try:
            return convert(source, lake_bucket_override or source.bucket, max_source_bytes)
        except Exception as exc:
            return exc

    outcomes = list(_sources.map(attempt, objects))
    batch = [c for c in outcomes if isinstance(c, Converted)]
    errors = [(s, e) for s, e in zip(objects, outcomes, strict=True) if isinstance(e, Exception)]
    try:
        land(batch, tables.database_from_environment())
    except Exception as exc:  # the commit or a write failed: none of the batch is in
        errors += [(item.source, exc) for item in batch]
    for source, error in errors:
        kind = "transient" if s3.is_transient(error) else "unexpected"
        _log(logging.ERROR, f"{kind}_failure", key=source.key, error=repr(error))
        if source.message_id is None:
            raise error  # direct invocation: let Lambda's own retry run it again
        failed[source.message_id] = repr(error)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed)]}
