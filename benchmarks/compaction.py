"""Compaction benchmark: one day of many small Lambda files, before and after compaction.

    .venv/bin/python benchmarks/compaction.py [--files 2000] [--transactions 50] [--runs 3]
                                              [--sources-per-commit 10]

A moto server runs as its own process on loopback, with the Iceberg tables in its Glue. --files
raw logs of --transactions baskets each, all on one past day, go through the Lambda's own
`convert` and `land` in batches of --sources-per-commit (the runtime's SQS batch: one data file
per table per batch). Then the day is compacted as the `compacted_days` asset does it (one
replace commit per table), while a DuckDB reader polls the day's row count. DuckDB queries over
that day (a fresh engine: cold; the median of --runs repeats: warm) are timed before and after,
on the same lake.
"""

import argparse
import os
import resource
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

from supermarket_cli.stack.children import moto_server

sys.path.insert(0, str(Path(__file__).resolve().parent))

BUCKET = "compaction-bench"
DAY = date(2026, 3, 2)
QUERIES = {
    "count + sum(total_amount)": f"SELECT count(*), sum(total_amount) FROM transactions "
    f"WHERE dt = DATE '{DAY}'",
    "daily_sales_by_store": f"SELECT * FROM daily_sales_by_store WHERE dt = DATE '{DAY}'",
    "top_skus": f"SELECT * FROM top_skus WHERE dt = DATE '{DAY}' AND revenue_rank <= 10",
}
ROW_COUNT = f"SELECT count(*) FROM transaction_items WHERE dt = DATE '{DAY}'"


def fill_day(client, files: int, transactions: int, per_commit: int) -> None:
    from lake_contract import tables
    from lambda_ingest.events import SourceObject
    from lambda_ingest.handler import convert, land
    from simulator.history import HistoryOptions, history_key, plan_files, render_file
    from simulator.reference import build_reference

    options = HistoryOptions(location=f"s3://{BUCKET}", transactions=files * transactions,
                             start=DAY, end=DAY, file_transactions=transactions)  # fmt: skip
    reference = build_reference(options.stores, options.skus, options.seed)

    def one(file) -> object:
        key = history_key(options, file)
        client.put_object(Bucket=BUCKET, Key=key, Body=render_file(options, reference, file))
        return convert(SourceObject(bucket=BUCKET, key=key, size=None, event_time=None), BUCKET)

    planned = plan_files(options)
    with ThreadPoolExecutor(8) as pool:
        for start in range(0, len(planned), per_commit):
            batch = list(pool.map(one, planned[start : start + per_commit]))
            land(batch, tables.database_from_environment())


def measure(runs: int) -> dict[str, tuple[float, float]]:
    from supermarket_queries.engine import LocalEngine

    timings = {}
    for name, sql in QUERIES.items():
        engine = LocalEngine(f"s3://{BUCKET}")
        began = time.perf_counter()
        engine.query(sql)
        cold = time.perf_counter() - began
        warm = []
        for _ in range(runs):
            began = time.perf_counter()
            engine.query(sql)
            warm.append(time.perf_counter() - began)
        timings[name] = (cold, statistics.median(warm))
    return timings


def poll_while(done: threading.Event, counts: list[int], errors: list[str]) -> None:
    """A DuckDB reader, as the dashboard is one: it plans the day afresh on every query."""
    from supermarket_queries.engine import LocalEngine, QueryError

    engine = LocalEngine(f"s3://{BUCKET}")
    engine.connection.execute("SET enable_external_file_cache = false")  # read afresh
    while not done.is_set():
        try:
            counts.append(engine.query(ROW_COUNT).column(0)[0].as_py())
        except QueryError as exc:
            errors.append(str(exc)[:160])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--transactions", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sources-per-commit", type=int, default=10)
    args = parser.parse_args()
    with moto_server() as endpoint:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1",
                          AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # fmt: skip
        os.environ.pop("LAKE_BUCKET", None)
        from lake_contract import tables
        from lake_contract.s3 import LakeBucket
        from lake_contract.tables import LakeTables
        from supermarket_dagster.compaction import compact_day

        lake = LakeBucket(BUCKET)
        lake.create()
        tables.create_tables(tables.glue_catalog(), f"s3://{BUCKET}")
        iceberg = LakeTables(tables.glue_catalog(), tables.database_from_environment())
        client = lake.client
        began = time.perf_counter()
        fill_day(client, args.files, args.transactions, args.sources_per_commit)
        print(f"ingested {args.files:,} files of {args.transactions} transactions into "
              f"dt={DAY} in {time.perf_counter() - began:.0f}s")  # fmt: skip
        before = measure(args.runs)
        counts, errors, done = [], [], threading.Event()
        reader = threading.Thread(target=poll_while, args=(done, counts, errors))
        reader.start()
        time.sleep(1)  # a few polls of the day as it was
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        compactions = [compact_day(iceberg, t, DAY) for t in ("transaction_items", "transactions")]
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        time.sleep(1)
        done.set()
        reader.join()
        after = measure(args.runs)

    print(f"\ncompaction: {sum(c.seconds for c in compactions):.2f} s in all, one replace "
          f"commit per table; load {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"peak RSS of this process {rss_before / 1024:.0f} MB before, "
          f"{rss_after / 1024:.0f} MB after compaction")  # fmt: skip
    print(f"{'table':18} {'data files':>15} {'MB':>15} {'rows':>9} {'seconds':>8}")
    for c in compactions:
        kept = c.files_before - c.files_rewritten
        print(f"{c.table:18} {c.files_before:>6,} -> {kept + c.files_written:<6,} "
              f"{c.bytes_rewritten / 1e6:>6.2f} -> {c.bytes_written / 1e6:<6.2f} "
              f"{c.rows:>9,} {c.seconds:>8.2f}")  # fmt: skip
    print(f"\n{'query over the day':28} {'cold before':>12} {'cold after':>11} {'ratio':>6} "
          f"{'warm before':>12} {'warm after':>11} {'ratio':>6}")  # fmt: skip
    for name, (cold, warm) in before.items():
        cold_after, warm_after = after[name]
        print(f"{name:28} {cold:>11.3f}s {cold_after:>10.3f}s {cold / cold_after:>5.1f}x "
              f"{warm:>11.3f}s {warm_after:>10.3f}s {warm / warm_after:>5.1f}x")  # fmt: skip
    rows = sorted(set(counts))
    print(f"\nDuckDB reader during compaction: {len(counts)} queries answered, row counts seen "
          f"{rows}, {len(errors)} failed")  # fmt: skip
    for error in sorted(set(errors))[:3]:
        print(f"  failed: {error}")


if __name__ == "__main__":
    main()
