"""A store's day, compressed: a day's worth of live files driven through the Lambda's handler in
well under real time, with open-day queries, the day checks, the sensors' ticks and memory
measured as the day fills.

    .venv/bin/python benchmarks/store_day.py [--files 86400] [--transactions 25] [--batch 10]
                                             [--checkpoints 12] [--compact-every 600]
                                             [--housekeeping-every 7200] [--yesterday 0]
                                             [--bad-every 1000]

One file every 0.5 s for 12 hours is 86,400 files; at the default feed (50 transactions/s in 2
files/s) each holds 25 transactions. A moto server runs as its own process on loopback. The
files are PUT to raw/incoming/ today and landed in batches of --batch (the SQS batch) by the
handler's own `land`, back to back, on two threads (the runtime's default concurrency): the
queue is left out, as it adds latency, not work. As the schedules would in the day, every
--compact-every files (600: five minutes of the day) the open day is deduped and compacted as
`compacted_days` does it, and its store totals are summed through the compaction before; every
--housekeeping-every files (7,200: an hour) the tables' old snapshots are expired and their
orphaned files removed as the hourly `lake_housekeeping` does it (its files an hour old: here,
those orphaned by the pass before). At each of --checkpoints points of the day it measures, on
today: the dashboard's open-day views (a fresh engine: cold; then the median of 3: warm), the
seven day checks (`day_results`, as the check step runs them: first as the check at the turn of
an hour, which lists the day's raw logs whole (`lake_day.SWEEP_EVERY`; a compressed hour of the
day is minutes here, so each checkpoint's first check is one), and reads the audit log since the
checkpoint before; then again at once, once that log is digested, as a check 5 minutes after
another finds it, listing only each producer's new logs; then once more in a new process, as
the stack starts each check run, for its peak RSS), one tick of the
audit sensor over the files landed since its last tick (listing after its cursor and reading
the records), the objects and bytes the bucket holds (what moto keeps in memory, as S3 keeps it
in AWS), and the RSS of moto, of the Lambda and of this process. Printed as a table, with the
load average.

The Lambda lands in a process of its own, as the runtime does in the stack, so that its memory
over the day is measured apart: it is the process that runs all day. This process stands for
what runs beside it: the housekeeping and the checks (in the stack, each a Dagster run of its
own, started afresh), the reader and the sensor. Each compaction runs in a new process, as the
stack starts its runs, and the checks once more at each checkpoint: `compaction run MiB` (the
largest since the checkpoint before) and `check run MiB` are their peak RSS.
--yesterday N first writes N raw logs under yesterday (not ingested), as a stack running for
days has them: today's checks must not list them. One file in --bad-every (the day's first
among them) ends in a line that is not JSON, which the Lambda quarantines, as a feed's bad
lines are: the checks count each such source's quarantine lines on every check.
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from moto_lake import moto_lake

if TYPE_CHECKING:
    from lake_contract.s3 import LakeBucket

BUCKET = "store-day-bench"
T = TypeVar("T")
OPEN_DAY_VIEWS = ("store_hourly_sales", "store_basket_size", "store_top_skus", "freshness")


def _views(today: date) -> dict[str, str]:
    where = f"dt = DATE '{today}'"
    return {
        "store_hourly_sales": f"SELECT * FROM store_hourly_sales WHERE {where}",
        "store_basket_size": f"SELECT * FROM store_basket_size WHERE {where}",
        "store_top_skus": f"SELECT * FROM store_top_skus WHERE {where}",
        "freshness": "SELECT * FROM freshness",
    }


def _moto_rss(endpoint: str) -> float:
    port = int(endpoint.rsplit(":", 1)[1])
    for connection in psutil.net_connections("tcp"):
        if connection.laddr and connection.laddr.port == port and connection.pid:
            return psutil.Process(connection.pid).memory_info().rss / 2**20
    return float("nan")


class Day:
    def __init__(
        self, files: int, transactions: int, batch: int, today: date, bad_every: int
    ) -> None:
        import numpy as np

        from lake_contract import tables
        from lake_contract.s3 import LakeBucket
        from lambda_ingest import handler
        from simulator.reference import build_reference

        self.files, self.transactions, self.batch = files, transactions, batch
        self.bad_every = bad_every
        self.reference = build_reference(5, 12_000, 0)
        self.rng = np.random.default_rng(0)
        self.lake = LakeBucket(BUCKET)
        self.today = today
        self.database = tables.database_from_environment()
        self.handler = handler
        self.lock = threading.Lock()
        self.landed = 0
        self.lags: list[float] = []

    def _file(self, n: int) -> tuple[str, bytes]:
        import numpy as np

        from simulator.baskets import draw_baskets, sequence_ids, to_ndjson

        with self.lock:  # one generator, drawn in order
            ids = sequence_ids(f"Pday-{n:06d}-", 0, self.transactions, 3)
            now_ms = int(time.time() * 1000)
            baskets = draw_baskets(self.rng, self.reference, ids,
                                   np.full(self.transactions, now_ms))  # fmt: skip
        key = f"raw/incoming/dt={self.today}/day-{n:06d}.ndjson"
        bad = b"{not json\n" if self.bad_every and n % self.bad_every == 0 else b""
        return key, to_ndjson(baskets) + bad

    def land_batch(self, first: int) -> None:
        from lambda_ingest.events import SourceObject

        converted = []
        for n in range(first, min(first + self.batch, self.files)):
            key, body = self._file(n)
            self.lake.write(key, body)
            event = datetime.now(UTC).isoformat(timespec="milliseconds")
            converted.append(self.handler.convert(SourceObject(BUCKET, key, len(body), event),
                                                  BUCKET))  # fmt: skip
        records = self.handler.land(converted, self.database)
        with self.lock:
            self.landed += len(records)
            self.lags += [r.lag_seconds for r in records if r.lag_seconds is not None]


_day: Day | None = None  # the Lambda process's own


def _start_lambda(files: int, transactions: int, batch: int, today: date, bad_every: int) -> None:
    global _day
    _day = Day(files, transactions, batch, today, bad_every)


def _land(first: int, last: int) -> tuple[int, list[float], float]:
    """In the Lambda process: files first..last landed, back to back, on two threads (the
    runtime's default concurrency); the files landed so far, the new lags, and its RSS."""
    assert _day is not None
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(_day.land_batch, range(first, last, _day.batch)))
    lags, _day.lags = _day.lags, []
    return _day.landed, lags, psutil.Process().memory_info().rss / 2**20


class LambdaProcess:
    """The Lambda's landing in a process of its own (spawned: nothing of this one's memory)."""

    def __init__(
        self, files: int, transactions: int, batch: int, today: date, bad_every: int = 0
    ) -> None:
        spawn = multiprocessing.get_context("spawn")
        started = (files, transactions, batch, today, bad_every)
        self._pool = ProcessPoolExecutor(1, spawn, _start_lambda, started)
        self.landed, self.lags, self.rss = 0, [], float("nan")

    def land(self, first: int, last: int) -> None:
        self.landed, lags, self.rss = self._pool.submit(_land, first, last).result()
        self.lags += lags

    def close(self) -> None:
        self._pool.shutdown()


def _peak_mib() -> float:
    """This process's peak RSS (VmHWM: its own, where ru_maxrss of a spawned process can be
    its parent's, the process it was forked from)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def _in_new_process(work: Callable[..., T], *args: object) -> T:
    """work(*args) in a new process, as the stack starts each Dagster run."""
    with ProcessPoolExecutor(1, multiprocessing.get_context("spawn")) as pool:
        return pool.submit(work, *args).result()


def _compact(today: date, mark: datetime) -> tuple[float, float]:
    """The compaction job's work on the open day: dedupe, compaction, then the store totals
    summed through `mark`; its seconds and the process's peak RSS in MiB."""
    from supermarket_dagster import compaction, dedupe
    from supermarket_dagster.resources import LakeResource
    from supermarket_queries import store_totals

    lake = LakeResource(bucket=BUCKET)
    began = time.perf_counter()
    dedupe.dedupe_day(lake.tables(), lake.objects(), today)
    for table in ("transactions", "transaction_items"):
        compaction.compact_day(lake.tables(), table, today)
    for totals in store_totals.ROLLUPS:
        store_totals.roll_up_day(lake.tables(), totals, today, mark, datetime.now(UTC))
    return time.perf_counter() - began, _peak_mib()


def compact(today: date, mark: datetime) -> tuple[float, float]:
    return _in_new_process(_compact, today, mark)


def housekeep(orphaned_before: datetime) -> tuple[float, int]:
    """The hourly housekeeping's work: old snapshots expired and files orphaned before the given
    time removed (the stack's job removes those an hour old; the landing is idle meanwhile, so
    no write is in flight here). Its seconds and the objects removed."""
    from lake_contract import tables
    from supermarket_dagster import compaction
    from supermarket_dagster.resources import LakeResource

    lake = LakeResource(bucket=BUCKET)
    began, removed = time.perf_counter(), 0
    for table in tables.ICEBERG_TABLES:
        compaction.expire_snapshots(lake.tables(), table)
        now = orphaned_before + compaction.ORPHAN_MIN_AGE
        removed += compaction.remove_orphans(lake.tables(), lake.objects(), table, now).removed
    return time.perf_counter() - began, removed


def _check_run() -> float:
    """The seven day checks of today once, as a check run does; the process's peak RSS in MiB."""
    import dagster as dg

    from supermarket_dagster.defs.history.checks import DAY_CHECKS, day_results
    from supermarket_dagster.resources import LakeResource

    keys = [dg.AssetCheckKey(s.asset_key, s.name) for s in DAY_CHECKS]
    list(day_results(LakeResource(bucket=BUCKET), datetime.now(UTC).date(), keys))
    return _peak_mib()


def bucket_held(lake: "LakeBucket") -> tuple[int, float]:
    """The objects in the bucket and their MiB: the lake, which moto holds in its memory."""
    count, size = 0, 0
    for page in lake.pages(""):
        count += len(page)
        size += sum(o.size for o in page)
    return count, size / 2**20


def measure(
    today: date, lake: "LakeBucket", cursor: str | None, endpoint: str
) -> tuple[dict[str, float], str | None]:
    import dagster as dg

    from supermarket_dagster import lake_day
    from supermarket_dagster.audit_log import MAX_RECORDS_PER_TICK, new_audit_keys, read_records
    from supermarket_dagster.defs.history.checks import DAY_CHECKS, day_results
    from supermarket_dagster.resources import LakeResource
    from supermarket_queries.engine import LocalEngine

    figures: dict[str, float] = {}
    views = _views(today)
    engine = LocalEngine(f"s3://{BUCKET}")
    began = time.perf_counter()
    for sql in views.values():
        engine.query(sql)
    figures["views cold"] = time.perf_counter() - began
    warm = []
    for _ in range(3):
        began = time.perf_counter()
        for sql in views.values():
            engine.query(sql)
        warm.append(time.perf_counter() - began)
    figures["views warm"] = statistics.median(warm)
    resource = LakeResource(bucket=BUCKET)
    keys = [dg.AssetCheckKey(s.asset_key, s.name) for s in DAY_CHECKS]
    # The first check after a checkpoint: the hour's, listing the day's raw logs whole, and
    # reading the whole stretch of the audit log since the checkpoint before (an hour of the day,
    # compressed), which it digests.
    sweep_every, lake_day.SWEEP_EVERY = lake_day.SWEEP_EVERY, timedelta(0)
    began = time.perf_counter()
    try:
        results = list(day_results(resource, today, keys))
    finally:
        lake_day.SWEEP_EVERY = sweep_every
    figures["checks"] = time.perf_counter() - began
    # The stack checks every 5 minutes: what a check costs once the log is digested is the same
    # checks again at once.
    began = time.perf_counter()
    again = list(day_results(resource, today, keys))
    figures["checks again"] = time.perf_counter() - began
    figures["checks passed"] = min(sum(r.passed for r in run) for run in (results, again))
    results += again
    failed = [f"{r.check_name}: {dict(r.metadata)}"[:300] for r in results if not r.passed]
    for line in failed:
        print(f"  check failed: {line}")
    began = time.perf_counter()
    reported = 0
    while True:  # one sensor tick reads at most MAX_RECORDS_PER_TICK: the ticks it would take
        new, cursor = new_audit_keys(lake, cursor, MAX_RECORDS_PER_TICK)
        reported += len(read_records(lake, new))
        if len(new) < MAX_RECORDS_PER_TICK:
            break
    figures["sensor s/1k records"] = (time.perf_counter() - began) / max(1, reported) * 1000
    figures["check run MiB"] = _in_new_process(_check_run)
    figures["lake objects"], figures["lake MiB"] = bucket_held(lake)
    figures["moto MiB"] = _moto_rss(endpoint)
    figures["checks MiB"] = psutil.Process().memory_info().rss / 2**20
    return figures, cursor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=86_400)
    parser.add_argument("--transactions", type=int, default=25)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--checkpoints", type=int, default=12)
    parser.add_argument("--compact-every", type=int, default=600)
    parser.add_argument("--housekeeping-every", type=int, default=7_200)
    parser.add_argument("--yesterday", type=int, default=0)
    parser.add_argument("--bad-every", type=int, default=1000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    with moto_lake(BUCKET) as endpoint:
        from lake_contract import layout
        from lake_contract.parquet import parquet_bytes
        from lake_contract.s3 import LakeBucket
        from simulator.reference import generate_skus, generate_supermarkets

        lake = LakeBucket(BUCKET)
        lake.write(layout.reference_key("supermarkets"), parquet_bytes(generate_supermarkets(5, 0)))
        lake.write(layout.reference_key("skus"), parquet_bytes(generate_skus(12_000, 0)))
        today = datetime.now(UTC).date()
        day = LambdaProcess(args.files, args.transactions, args.batch, today, args.bad_every)
        yesterday = layout.day_prefix(layout.RAW_INCOMING, today - timedelta(days=1))
        for first in range(0, args.yesterday, 10_000):  # a slice of bodies in memory at a time
            last = min(first + 10_000, args.yesterday)
            lake.write_many({f"{yesterday}day-{n:06d}.ndjson": b"{}\n" for n in range(first, last)})
        every = max(args.batch, args.files // args.checkpoints // args.batch * args.batch)
        cursor, rows, started = None, [], time.perf_counter()
        compacted_at, compactions, marked_at, reported = 0, [], datetime.now(UTC), 0
        housekept_at, housekeeping, last_pass = 0, [], datetime.now(UTC)
        try:
            for first in range(0, args.files, every):
                day.land(first, min(first + every, args.files))
                while day.landed >= compacted_at + args.compact_every:
                    # In the stack the mark is 150 s back and the job runs every 5 minutes:
                    # here, the time of the compaction before (--compact-every files back).
                    now = datetime.now(UTC)
                    compactions.append(compact(today, marked_at))
                    marked_at, compacted_at = now, compacted_at + args.compact_every
                while day.landed >= housekept_at + args.housekeeping_every:
                    now = datetime.now(UTC)
                    housekeeping.append(housekeep(last_pass))
                    last_pass, housekept_at = now, housekept_at + args.housekeeping_every
                figures, cursor = measure(today, lake, cursor, endpoint)
                figures["files"] = day.landed
                # The largest compaction run since the checkpoint before (each a new process).
                figures["compaction run MiB"] = max((p for _, p in compactions[reported:]),
                                                    default=float("nan"))  # fmt: skip
                reported = len(compactions)
                figures["elapsed"] = time.perf_counter() - started
                figures["lambda MiB"] = day.rss
                figures["load"] = os.getloadavg()[0]
                rows.append(figures)
                print(_row(figures), flush=True)
        finally:
            day.close()
        lags = sorted(day.lags)
    passes = [seconds for seconds, _ in housekeeping]
    seconds, peaks = [c[0] for c in compactions], [c[1] for c in compactions]
    print(f"\n{day.landed:,} files ({day.landed * args.transactions:,} transactions) in "
          f"{rows[-1]['elapsed']:.0f}s, {day.landed * 0.5 / rows[-1]['elapsed']:.1f}x real time "
          f"(one file every 0.5 s); S3 event -> committed p50 {lags[len(lags) // 2]:.2f}s "
          f"p99 {lags[int(len(lags) * 0.99)]:.2f}s; {len(compactions)} compactions, "
          f"median {statistics.median(seconds or [0]):.2f}s, peak RSS of a compaction run "
          f"{min(peaks or [0]):,.0f}-{max(peaks or [0]):,.0f} MiB; {len(housekeeping)} "
          f"housekeeping passes, median {statistics.median(passes or [0]):.2f}s, "
          f"{sum(n for _, n in housekeeping):,} orphaned objects removed")  # fmt: skip


COLUMNS = ("files", "elapsed", "views cold", "views warm", "checks", "checks again",
           "checks passed", "sensor s/1k records", "lake objects", "lake MiB", "moto MiB",
           "lambda MiB", "checks MiB", "check run MiB", "compaction run MiB",
           "load")  # fmt: skip


def _row(figures: dict[str, float]) -> str:
    return "  ".join(f"{name} {figures[name]:,.2f}" for name in COLUMNS)


if __name__ == "__main__":
    main()
