"""Day-check benchmark: what checking one day of the fact tables costs, by day size.

    .venv/bin/python benchmarks/checks.py [--sizes 3334,33340,333400] [--runs 3] [--live-files 0]

For each size, one day of history (the simulator's logs, 5 stores, 12,000 SKUs) is ingested by
the Lambda's own `ingest` into the Iceberg tables on a moto server (its own process, loopback;
a database per size), optionally beside --live-files small live logs of 25 transactions
landed in the runtime's batches of 10; then every day check runs on that day through
`day_results` (no Dagster run around it), --runs times, and the median is printed, split into
reading the day (planned from the manifest) and reconciling it.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

from simulator.defaults import DEFAULT_TRANSACTIONS_PER_DAY
from supermarket_cli.stack.children import moto_server

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "checks-bench"
DAY = date(2026, 3, 2)


def build_day(transactions: int, live_files: int, bucket: str) -> None:
    from lake_contract import layout, tables
    from lake_contract.parquet import parquet_bytes
    from lake_contract.s3 import LakeBucket
    from lambda_ingest.events import SourceObject
    from lambda_ingest.handler import convert, ingest, land
    from simulator.defaults import DEFAULT_SEED, DEFAULT_SKUS, DEFAULT_STORES
    from simulator.history import HistoryOptions, history_key, plan_files, render_file
    from simulator.reference import build_reference, generate_skus, generate_supermarkets
    from tests.factories import ndjson, record

    lake = LakeBucket(bucket)
    lake.write(layout.reference_key("supermarkets"),
                 parquet_bytes(generate_supermarkets()), "application/x-parquet")  # fmt: skip
    lake.write(layout.reference_key("skus"), parquet_bytes(generate_skus()),
                 "application/x-parquet")  # fmt: skip
    options = HistoryOptions(location=f"s3://{bucket}", transactions=transactions, start=DAY,
                             end=DAY)  # fmt: skip
    reference = build_reference(DEFAULT_STORES, DEFAULT_SKUS, DEFAULT_SEED)
    keys = []
    for file in plan_files(options):
        key = history_key(options, file)
        lake.write(key, render_file(options, reference, file), "application/x-ndjson")
        keys.append(key)
    items = [{"sku_id": "SKU00001", "quantity": 1, "unit_price": 1}]
    for n in range(live_files):
        key = f"{layout.day_prefix(layout.RAW_INCOMING, DAY)}live-{n:05d}.ndjson"
        lines = [record(f"L{n}-{i}", transaction_datetime=f"{DAY}T12:00:00Z", items=items)
                 for i in range(25)]  # fmt: skip
        lake.write(key, ndjson(*lines), "application/x-ndjson")
        keys.append(key)
    history, live = keys[: len(keys) - live_files], keys[len(keys) - live_files :]
    for key in history:
        ingest(SourceObject(bucket=bucket, key=key, size=None, event_time=None), bucket)
    for start in range(0, len(live), 10):  # the runtime's batches: one commit per table each
        batch = [convert(SourceObject(bucket=bucket, key=k, size=None, event_time=None), bucket)
                 for k in live[start : start + 10]]  # fmt: skip
        land(batch, tables.database_from_environment())


def items_in_lake(bucket: str) -> tuple[int, int]:
    """How many data files the day's transaction_items hold, and their rows (from the manifest)."""
    from lake_contract import tables
    from lake_contract.tables import LakeTables, day_filter

    items = LakeTables(tables.glue_catalog(), tables.database_from_environment())
    scan = items.current("transaction_items").scan(row_filter=day_filter("transaction_items", DAY))
    files = list(scan.plan_files())
    return len(files), sum(task.file.record_count for task in files)


def time_checks(bucket: str, runs: int) -> dict[str, float]:
    import dagster as dg

    from supermarket_dagster import lake_day
    from supermarket_dagster.defs.history import checks
    from supermarket_dagster.resources import LakeResource

    lake = LakeResource(bucket=bucket)
    keys = [dg.AssetCheckKey(spec.asset_key, spec.name) for spec in checks.DAY_CHECKS]
    timings: dict[str, list[float]] = {}
    for _ in range(runs):
        start = time.perf_counter()
        transactions = lake_day.read_day(lake.tables(), "transactions", DAY)
        items = lake_day.read_day(lake.tables(), "transaction_items", DAY)
        read = time.perf_counter() - start
        timings.setdefault("read day", []).append(read)
        clock = time.perf_counter()
        lake_day.reconcile_day(
            lake.objects(),
            DAY,
            lake_day.SourceRows.of(transactions.rows),
            lake_day.SourceRows.of(items.rows),
        )
        timings.setdefault("reconcile", []).append(time.perf_counter() - clock)
        clock = time.perf_counter()
        results = list(checks.day_results(lake, DAY, keys))
        assert all(r.passed for r in results), [r for r in results if not r.passed]
        timings.setdefault("all checks (day_results)", []).append(time.perf_counter() - clock)
    return {name: statistics.median(values) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # The demo's day, and ten and a hundred times it.
    day = DEFAULT_TRANSACTIONS_PER_DAY
    parser.add_argument("--sizes", default=",".join(str(day * k) for k in (1, 10, 100)))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--live-files", type=int, default=0)
    args = parser.parse_args()
    with moto_server() as endpoint:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1",
                          AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # fmt: skip
        sys.path.insert(0, str(ROOT))
        import boto3

        from lake_contract import tables

        print("| transactions | items | data files | read day | reconcile | all checks |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for n, size in enumerate(int(s) for s in args.sizes.split(",")):
            bucket = f"{BUCKET}-{n}"
            boto3.client("s3").create_bucket(Bucket=bucket)
            os.environ[tables.DATABASE_VARIABLE] = f"checks_bench_{n}"
            tables.create_tables(tables.glue_catalog(), f"s3://{bucket}",
                                 tables.database_from_environment())  # fmt: skip
            build_day(size, args.live_files, bucket)
            objects, item_rows = items_in_lake(bucket)
            median = time_checks(bucket, args.runs)
            print(f"| {size + 25 * args.live_files:,} | {item_rows:,} | {objects:,} "
                  f"| {median['read day']:.3f} s | {median['reconcile']:.3f} s "
                  f"| **{median['all checks (day_results)']:.3f} s** |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
