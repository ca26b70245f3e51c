"""A range of history days backfilled in one process, with the Lambda's own transform and
committer: the days' raw logs converted a few at a time on both cores, and landed in commits of
whole days, each commit holding at most COMMIT_TRANSACTIONS transactions (one commit for a
month of the demo, about one a day at 10M), so memory stays flat whatever the range.

Pure logic, testable without Dagster: the history asset calls it with its partition range.
"""

import random
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

from lake_contract import layout
from lake_contract.audit import AuditRecord
from lake_contract.s3 import LakeBucket
from lambda_ingest.events import SourceObject
from lambda_ingest.handler import Converted, convert, land

FACT_TABLES = ("transactions", "transaction_items")
# Most transactions in one commit: ~0.5 GB of Arrow rows at most held before they land.
COMMIT_TRANSACTIONS = 400_000
# Sources read and transformed at once: two on two cores (each transform uses both cores too),
# and as many again waiting, so a commit never leaves the cores idle.
CONVERTING = 4
COMMIT_ATTEMPTS = 5  # a refused commit is tried again, after 0.5, 1, 2, 4 s (and jitter)


class MissingRawLogs(Exception):
    """Days of the range have no raw logs: nothing is backfilled, the prefixes are named."""


@dataclass(frozen=True)
class DayLanded:
    """One day of the range in the tables: its sources and what they held."""

    day: date
    sources: int
    records_read: int
    records_quarantined: int
    rows: dict[str, int]  # table -> rows

    @classmethod
    def from_audits(cls, day: date, audits: list[AuditRecord]) -> "DayLanded":
        return cls(
            day=day,
            sources=len(audits),
            records_read=sum(a.records_read for a in audits),
            records_quarantined=sum(a.records_quarantined for a in audits),
            rows={t: sum(a.rows_written[t] for a in audits) for t in FACT_TABLES},
        )


def day_sources(objects: LakeBucket, days: list[date]) -> dict[date, list[str]]:
    """Every day's raw log keys; raises MissingRawLogs, naming each empty prefix, before any
    day is touched, so a range with a missing day is a clear failure, never a partial load."""
    sources = {day: objects.keys(layout.day_prefix(layout.RAW_HISTORY, day)) for day in days}
    missing = [d for d, keys in sources.items() if not keys]
    if missing:
        prefixes = ", ".join(f"s3://{objects.name}/{layout.day_prefix(layout.RAW_HISTORY, d)}"
                             for d in missing)  # fmt: skip
        raise MissingRawLogs(f"no raw logs under {prefixes}: nothing to backfill")
    return sources


def _converted_in_order(
    bucket: str, sources: dict[date, list[str]]
) -> Iterator[tuple[date, Converted | None]]:
    """(day, converted source) in day order, with at most CONVERTING sources in memory ahead."""
    queue = [(day, key) for day in sorted(sources) for key in sources[day]]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="backfill") as pool:
        pending: deque[tuple[date, Future]] = deque()
        for day, key in queue:
            source = SourceObject(bucket=bucket, key=key, size=None, event_time=None)
            pending.append((day, pool.submit(convert, source, bucket)))
            if len(pending) >= CONVERTING:
                done_day, future = pending.popleft()
                yield done_day, future.result()
        while pending:
            done_day, future = pending.popleft()
            yield done_day, future.result()


def _land_retrying(batch: list[Converted], database: str) -> list[AuditRecord]:
    """land(), again after a refused commit: in AWS other runs and the Lambda commit to the same
    tables, and Glue refuses a commit on a stale version. Landing again is safe: the sources
    already in are replaced, never doubled (their orphaned files go with housekeeping)."""
    from pyiceberg.exceptions import CommitFailedException

    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return land(batch, database)
        except CommitFailedException:
            if attempt == COMMIT_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * 2**attempt + random.random())
    raise AssertionError("unreachable")


def backfill_days(
    objects: LakeBucket, database: str, sources: dict[date, list[str]]
) -> Iterator[DayLanded]:
    """Converts and lands every day of sources (from day_sources); yields each day once its
    rows are committed. Re-running a day replaces its sources' rows (the committer's rule)."""
    batch: list[Converted] = []
    batch_days: dict[date, int] = {}  # day -> its sources in the batch
    batch_transactions = 0
    remaining = {day: len(keys) for day, keys in sources.items()}

    def land_batch() -> Iterator[DayLanded]:
        audits = _land_retrying(batch, database)
        by_source = {a.source_key: a for a in audits}
        for day in batch_days:
            keys = sources[day]
            yield DayLanded.from_audits(day, [by_source[k] for k in keys if k in by_source])

    for day, converted in _converted_in_order(objects.name, sources):
        remaining[day] -= 1
        batch_days.setdefault(day, 0)
        if converted is not None:  # None: the object vanished since it was listed
            batch.append(converted)
            batch_transactions += converted.result.transactions.num_rows
        if remaining[day] == 0 and batch_transactions >= COMMIT_TRANSACTIONS:
            yield from land_batch()
            batch, batch_days, batch_transactions = [], {}, 0
    if batch_days:
        yield from land_batch()
