"""Compaction benchmark: one day of many small Lambda files, before and after compaction.

    .venv/bin/python benchmarks/compaction.py [--files 2000] [--transactions 50] [--runs 3]

A moto server runs as its own process on loopback. --files raw logs of --transactions baskets
each, all on one past day, go through the Lambda's own `ingest` (one object per source per
table). Then the day is compacted as the `compacted_days` asset does it, while a DuckDB reader
polls the day's row count. DuckDB queries over that day (a fresh engine: cold; the median of
--runs repeats: warm) are timed before and after, on the same lake.
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


def fill_day(client, files: int, transactions: int) -> None:
    from lambda_ingest.events import SourceObject
    from lambda_ingest.handler import ingest
    from simulator.history import HistoryOptions, history_key, plan_files, render_file
    from simulator.reference import build_reference

    options = HistoryOptions(location=f"s3://{BUCKET}", transactions=files * transactions,
                             start=DAY, end=DAY, file_transactions=transactions)  # fmt: skip
    reference = build_reference(options.stores, options.skus, options.seed)

    def one(file) -> None:
        key = history_key(options, file)
        client.put_object(Bucket=BUCKET, Key=key, Body=render_file(options, reference, file))
        ingest(SourceObject(bucket=BUCKET, key=key, size=None, event_time=None), BUCKET)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, plan_files(options)))


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
    """A DuckDB reader, as the dashboard is one: it lists the day afresh on every query."""
    from supermarket_queries.engine import LocalEngine, QueryError

    engine = LocalEngine(f"s3://{BUCKET}")
    engine.connection.execute("SET enable_external_file_cache = false")  # list and read afresh
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
    args = parser.parse_args()
    with moto_server() as endpoint:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1",
                          AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # fmt: skip
        os.environ.pop("LAKE_BUCKET", None)
        from lake_contract.s3 import LakeBucket
        from supermarket_dagster.compaction import compact_day

        lake = LakeBucket(BUCKET)
        lake.create()
        client = lake.client
        began = time.perf_counter()
        fill_day(client, args.files, args.transactions)
        print(f"ingested {args.files:,} files of {args.transactions} transactions into "
              f"dt={DAY} in {time.perf_counter() - began:.0f}s")  # fmt: skip
        before = measure(args.runs)
        counts, errors, done = [], [], threading.Event()
        reader = threading.Thread(target=poll_while, args=(done, counts, errors))
        reader.start()
        time.sleep(1)  # a few polls of the day as it was
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        compaction = compact_day(lake, DAY)
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        time.sleep(1)
        done.set()
        reader.join()
        after = measure(args.runs)

    metadata = compaction.metadata()
    print(f"\ncompaction: {metadata['duration_s']:.2f} s in all, of which "
          f"{metadata['read_s']:.2f} s listing and reading; swap window (first PUT to last DELETE) "
          f"{metadata['swap_window_ms']:.0f} ms")  # fmt: skip
    print(f"peak RSS of this process {rss_before / 1024:.0f} MB before, "
          f"{rss_after / 1024:.0f} MB after compaction")  # fmt: skip
    print(f"{'table':18} {'objects':>15} {'MB':>15} {'rows':>9}")
    for table in ("transactions", "transaction_items"):
        m = {k.split(".", 1)[1]: v for k, v in metadata.items() if k.startswith(f"{table}.")}
        print(f"{table:18} {m['objects_before']:>6,} -> {m['objects_after']:<6,} "
              f"{m['bytes_before'] / 1e6:>6.2f} -> {m['bytes_after'] / 1e6:<6.2f} "
              f"{m['rows_after']:>9,}")  # fmt: skip
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
