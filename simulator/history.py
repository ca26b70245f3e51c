"""Historical transaction logs: streamed day by day, file by file, never all in memory.

Each file is an independent unit drawn from its own seeded stream, so the output is the same
whatever the number of workers, and transaction ids are unique by construction: the id prefix
names the seed, the day and the file.
"""

import gzip
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from lake_contract import layout
from simulator import catalog
from simulator.baskets import draw_baskets, sequence_ids, to_ndjson
from simulator.defaults import (
    DEFAULT_FILE_TRANSACTIONS,
    DEFAULT_SEED,
    DEFAULT_SKUS,
    DEFAULT_STORES,
    DEFAULT_TRANSACTIONS,
    default_history_start,
)
from simulator.reference import Reference, build_reference
from simulator.sink import Sink, open_sink

# Monday..Sunday: weekends are busier.
WEEKDAY_TRAFFIC = [1.0, 0.95, 0.97, 1.0, 1.1, 1.3, 1.2]
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class HistoryFile:
    """One log file to write: the n-th file of a day, with its share of transactions."""

    day: date
    index: int
    transactions: int


@dataclass(frozen=True)
class HistoryOptions:
    location: str  # local folder or s3://bucket[/prefix]
    transactions: int = DEFAULT_TRANSACTIONS
    start: date | None = None  # default: DEFAULT_DAYS days ending yesterday (UTC)
    end: date | None = None  # inclusive
    seed: int = DEFAULT_SEED
    stores: int = DEFAULT_STORES
    skus: int = DEFAULT_SKUS
    file_transactions: int = DEFAULT_FILE_TRANSACTIONS
    compress: bool = False
    workers: int = 1

    def days(self) -> tuple[date, date]:
        end = self.end or (datetime.now(UTC).date() - timedelta(days=1))
        start = self.start or default_history_start(end + timedelta(days=1))
        if start > end:
            raise ValueError(f"start {start} is after end {end}")
        return start, end


def plan_files(options: HistoryOptions) -> list[HistoryFile]:
    """Spreads the transactions over the days (weekday-weighted) and cuts each day into files."""
    if options.transactions < 0:
        raise ValueError(f"transactions must not be negative, got {options.transactions}")
    if options.file_transactions < 1:
        raise ValueError(f"file size must be positive, got {options.file_transactions}")
    start, end = options.days()
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    weights = np.array([WEEKDAY_TRAFFIC[d.weekday()] for d in days])
    rng = np.random.default_rng([options.seed, start.toordinal(), end.toordinal()])
    per_day = rng.multinomial(options.transactions, weights / weights.sum())
    files = []
    for day, count in zip(days, per_day.tolist(), strict=True):
        for index, first in enumerate(range(0, count, options.file_transactions)):
            files.append(HistoryFile(day, index, min(options.file_transactions, count - first)))
    return files


def history_key(options: HistoryOptions, file: HistoryFile) -> str:
    suffix = ".ndjson.gz" if options.compress else ".ndjson"
    name = f"history-s{options.seed}-{file.index:05d}{suffix}"
    return f"{layout.day_prefix(layout.RAW_HISTORY, file.day)}{name}"


def render_file(options: HistoryOptions, reference: Reference, file: HistoryFile) -> bytes:
    """The bytes of one log file, determined by (seed, day, file index) alone."""
    rng = np.random.default_rng([options.seed, file.day.toordinal(), file.index])
    prefix = f"H{options.seed}-{file.day:%Y%m%d}-{file.index:03d}-"
    digits = len(str(max(options.file_transactions - 1, 1)))
    ids = sequence_ids(prefix, 0, file.transactions, digits)
    hours = np.array(catalog.HOURLY_TRAFFIC, dtype=float)
    hour = rng.choice(24, size=file.transactions, p=hours / hours.sum())
    midnight = int(datetime(file.day.year, file.day.month, file.day.day, tzinfo=UTC).timestamp())
    offsets = hour * 3_600_000 + rng.integers(0, 3_600_000, file.transactions)
    times = np.sort(midnight * 1000 + offsets)  # a log is written in till order
    data = to_ndjson(draw_baskets(rng, reference, ids, times))
    return gzip.compress(data, compresslevel=5, mtime=0) if options.compress else data


# Per worker process: built once, reused for every file the worker renders.
_worker: tuple[HistoryOptions, Reference, Sink] | None = None


def _start_worker(options: HistoryOptions) -> None:
    global _worker
    reference = build_reference(options.stores, options.skus, options.seed)
    _worker = (options, reference, open_sink(options.location))


def _write_file(file: HistoryFile) -> tuple[HistoryFile, int]:
    assert _worker is not None, "worker not started"
    options, reference, sink = _worker
    data = render_file(options, reference, file)
    sink.put(history_key(options, file), data)
    return file, len(data)


def generate_history(options: HistoryOptions) -> Iterator[tuple[HistoryFile, int]]:
    """Writes every planned file; yields (file, bytes written) as each one lands."""
    files = plan_files(options)
    if options.workers <= 1:
        _start_worker(options)
        for file in files:
            yield _write_file(file)
        return
    # Each worker holds at most one file's baskets; map keeps order and bounds nothing else.
    with ProcessPoolExecutor(
        max_workers=min(options.workers, os.cpu_count() or 1),
        initializer=_start_worker,
        initargs=(options,),
    ) as pool:
        yield from pool.map(_write_file, files)
