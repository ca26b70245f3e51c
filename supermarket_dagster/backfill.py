"""A range of history days backfilled in one process, with the Lambda's own transform and
committer: the days' raw logs converted on both cores, each written as data files of its own as
soon as it is converted (only the files' statistics are kept), and landed in commits of whole
days, each commit holding at most COMMIT_TRANSACTIONS transactions (one commit for a month of
the demo, one for two days at 10M). Memory is two sources' rows, whatever the range or the day.

Pure logic, testable without Dagster: the history asset calls it with its partition range.
"""

import random
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import pyarrow as pa

from lake_contract import layout
from lake_contract.audit import AuditRecord
from lake_contract.s3 import LakeBucket
from lambda_ingest.events import SourceObject
from lambda_ingest.handler import StagedSource, convert, land_staged, stage_source

FACT_TABLES = ("transactions", "transaction_items")
# Most transactions in one commit: how much work a failed commit puts back, and how often
# progress shows (the rows are in data files already: a commit holds no rows in memory).
COMMIT_TRANSACTIONS = 400_000
# Sources converted at once, one a core; their rows are in memory until written.
CONVERTING = 2
# Staged sources waiting for their day's commit, at most: converting goes on during a commit.
STAGED_AHEAD = 16
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


def _staged_in_order(
    bucket: str, database: str, sources: dict[date, list[str]]
) -> Iterator[tuple[date, StagedSource | None]]:
    """(day, staged source) in day order: each source converted and written as data files of
    its own by one of CONVERTING workers, at most STAGED_AHEAD of them waiting to be taken."""

    def staged(key: str) -> StagedSource | None:
        converted = convert(SourceObject(bucket=bucket, key=key, size=None, event_time=None),
                            bucket)  # fmt: skip
        return stage_source(converted, database) if converted else None

    queue = [(day, key) for day in sorted(sources) for key in sources[day]]
    with ThreadPoolExecutor(max_workers=CONVERTING, thread_name_prefix="backfill") as pool:
        pending: deque[tuple[date, Future]] = deque()
        for day, key in queue:
            pending.append((day, pool.submit(staged, key)))
            if len(pending) >= STAGED_AHEAD:
                done_day, future = pending.popleft()
                yield done_day, future.result()
        while pending:
            done_day, future = pending.popleft()
            yield done_day, future.result()


def _land_retrying(batch: list[StagedSource], database: str) -> list[AuditRecord]:
    """land_staged(), again after a refused commit: in AWS other runs and the Lambda commit to
    the same tables, and Glue refuses a commit on a stale version. Landing again is safe: the
    sources already in are replaced, never doubled (their orphaned files go with housekeeping)."""
    from pyiceberg.exceptions import CommitFailedException

    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return land_staged(batch, database)
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
    batch: list[StagedSource] = []
    batch_days: dict[date, int] = {}  # day -> its sources in the batch
    batch_transactions = 0
    remaining = {day: len(keys) for day, keys in sources.items()}

    def land_batch() -> Iterator[DayLanded]:
        audits = _land_retrying(batch, database)
        pa.default_memory_pool().release_unused()  # the converted sources' buffers, given back
        by_source = {a.source_key: a for a in audits}
        for day in batch_days:
            keys = sources[day]
            yield DayLanded.from_audits(day, [by_source[k] for k in keys if k in by_source])

    for day, staged in _staged_in_order(objects.name, database, sources):
        remaining[day] -= 1
        batch_days.setdefault(day, 0)
        if staged is not None:  # None: the object vanished since it was listed
            batch.append(staged)
            batch_transactions += staged.counts.rows_written["transactions"]
        if remaining[day] == 0 and batch_transactions >= COMMIT_TRANSACTIONS:
            yield from land_batch()
            batch, batch_days, batch_transactions = [], {}, 0
    if batch_days:
        yield from land_batch()
