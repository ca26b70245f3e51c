"""The open day as it grows: the plain-Parquet layout against the Iceberg tables, in one run.

    .venv/bin/python benchmarks/open_day.py [--steps 0,2000,10000,30000] [--transactions 25]
                                            [--sources-per-commit 10] [--runs 5] [--plain-runs 2]

A moto server runs as its own process on loopback. One day's live feed is replayed: source
files of --transactions baskets (Poisson, as the payment processor draws them) are PUT to
raw/incoming/, read and transformed by the Lambda's own `convert`, and landed by its own `land`
in batches of --sources-per-commit (the runtime's SQS batch: one Iceberg commit per table,
quarantine and audit records as in the stack). The same rows are also written as the lake was
before Iceberg: one Parquet object per source per table under plain/lake/<table>/dt=.../, read
by listing (the engine's read_parquet over a glob, hive-partitioned by dt).

At each step (--steps source files on the day) it prints, for both layouts: warm latency of
every open-day view (WHERE dt = the day; median of --runs on one engine, --plain-runs for the
listing layout, after a cold first query), the day checks (the day's rows read as each layout
reads them, then every rule; the reconciliation, which reads raw/ and audit/ the same way for
both layouts, separately), the commit time per batch since the previous step (p50/p99), and the
metadata: the current metadata file, what a reader plans from (manifest list and manifests),
and everything under metadata/. Then the open day is compacted as the open_day_compaction
schedule runs it (one replace commit per table), the Iceberg figures are taken again, and the
tables are set back to their uncompacted snapshot, so the next step grows the uncompacted day.

The store totals (store_hourly_totals and store_sku_totals, which the store views read in place
of the rows ingested before their mark) are rolled up as the compaction job does, --totals-lag
files behind the feed: 900 by default, the most the stack leaves them behind at the default
feed (two files a second for the 150 s the rollup waits for commits, plus the schedule's 5
minutes). The Iceberg views are timed before the rollup, then again after it, as the committer
leaves the day and compacted.
Goal: open-day views warm < 0.3 s on Iceberg, flat from 2,000 to 30,000 files.
"""

import argparse
import contextlib
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from supermarket_cli.stack.children import moto_server  # noqa: E402 (after the path is set)

BUCKET = "open-day-bench"
PLAIN = "plain"  # the prefix the plain-Parquet baseline lives under, in the same bucket
DAY = date(2026, 3, 2)
FEED_FILES_PER_SECOND = 2.0  # the feed's default: file n is stamped n / 2 s into the day
VIEWS = {  # the dashboard's open-day reads (supermarket_dashboard/figures.py), one day each
    "daily_sales_by_store": f"dt = DATE '{DAY}'",
    "store_hourly_sales": f"dt = DATE '{DAY}'",
    "top_skus": f"dt = DATE '{DAY}' AND revenue_rank <= 10",
    "store_top_skus": f"dt = DATE '{DAY}'",
    "hourly_sales": f"dt = DATE '{DAY}'",
    "basket_size": f"dt = DATE '{DAY}'",
    "payment_method_mix": f"dt = DATE '{DAY}'",
    "freshness": None,
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


class Feed:
    """One day of the live feed, replayed as fast as it can be landed."""

    def __init__(self, transactions: int, per_commit: int, plain_up_to: int) -> None:
        import boto3
        import numpy as np

        from lake_contract import tables
        from lake_contract.s3 import LakeBucket
        from simulator.defaults import DEFAULT_SEED, DEFAULT_SKUS, DEFAULT_STORES
        from simulator.reference import build_reference

        self.transactions, self.per_commit = transactions, per_commit
        self.plain_up_to = plain_up_to  # the baseline is written (and measured) this far
        self.reference = build_reference(DEFAULT_STORES, DEFAULT_SKUS, DEFAULT_SEED)
        self.rng = np.random.default_rng(0)
        self.raw = LakeBucket(BUCKET, writable=("raw/",))
        self.plain = LakeBucket(BUCKET, writable=(f"{PLAIN}/",))
        self.s3 = boto3.client("s3")
        self.database = tables.database_from_environment()
        self.files = 0
        self.commit_seconds: list[float] = []
        self._io = ThreadPoolExecutor(max_workers=8, thread_name_prefix="bench-io")
        self._prepare = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-prepare")

    def _source(self, n: int) -> tuple[str, bytes]:
        from lake_contract import layout
        from simulator.baskets import draw_baskets, sequence_ids, to_ndjson

        start = datetime.combine(DAY, datetime.min.time(), UTC) + timedelta(hours=6)
        at_ms = int(start.timestamp() * 1000 + n * 1000 / FEED_FILES_PER_SECOND)
        count = max(1, int(self.rng.poisson(self.transactions)))
        times = self.rng.integers(at_ms - int(1000 / FEED_FILES_PER_SECOND), at_ms, count)
        ids = sequence_ids(f"Pbench-{n:06d}-", 0, count, 4)
        body = to_ndjson(draw_baskets(self.rng, self.reference, ids, self.rng.permutation(times)))
        return f"{layout.day_prefix(layout.RAW_INCOMING, DAY)}feed-{n:06d}.ndjson", body

    def _plain_objects(self, converted: Any) -> None:
        """The source's rows as the lake held them before Iceberg: an object per table per day."""
        from lake_contract import layout, schema
        from lake_contract.parquet import parquet_bytes

        for table in ("transactions", "transaction_items"):
            rows = getattr(converted.result, table)
            key = layout.table_key(table, DAY, converted.source.key)
            columns = [f.name for f in schema.TABLES[table]]
            body = parquet_bytes(rows.select(columns).cast(schema.TABLES[table]))
            self.plain.write(f"{PLAIN}/{key}", body, "application/x-parquet")

    def grow(self, target: int) -> None:
        """Lands sources until the day holds `target`, a batch (one commit a table) at a time."""
        from lambda_ingest import handler
        from lambda_ingest.events import SourceObject

        timed = handler.commit_sources

        def commit(*args: Any, **kwargs: Any) -> Any:  # the commit alone, inside land()
            clock = time.perf_counter()
            try:
                return timed(*args, **kwargs)
            finally:
                self.commit_seconds.append(time.perf_counter() - clock)

        def prepare(numbers: range) -> list[Any]:
            """PUT the batch's raw logs, convert them as the handler does, write the baseline."""
            sources = [self._source(n) for n in numbers]
            list(self._io.map(lambda s: self.raw.write(s[0], s[1], "application/x-ndjson"),
                              sources))  # fmt: skip
            batch = list(self._io.map(
                lambda s: handler.convert(SourceObject(BUCKET, s[0], None, None), BUCKET),
                sources,
            ))  # fmt: skip
            if numbers[-1] < self.plain_up_to:
                list(self._io.map(self._plain_objects, batch))
            return batch

        began, done = time.monotonic(), self.files
        batches = [range(n, min(target, n + self.per_commit))
                   for n in range(self.files, target, self.per_commit)]  # fmt: skip
        with mock.patch.object(handler, "commit_sources", commit):
            # The next batch is prepared while this one lands, as the runtime's pollers overlap.
            pending = self._prepare.submit(prepare, batches[0]) if batches else None
            for number, numbers in enumerate(batches):
                batch = pending.result()
                if number + 1 < len(batches):
                    pending = self._prepare.submit(prepare, batches[number + 1])
                handler.land(batch, self.database)
                self.files = numbers[-1] + 1
                if self.files % 2000 < self.per_commit:
                    rate = (self.files - done) / (time.monotonic() - began)
                    print(f"  ... {self.files:,} files ({rate:.0f}/s, {load()})", flush=True)


def plain_engine() -> Any:
    """The local engine as it read the lake before Iceberg: every table a listed prefix."""
    from supermarket_queries.engine import LocalEngine

    class PlainParquetEngine(LocalEngine):
        @property
        def iceberg(self) -> bool:
            return False

    return PlainParquetEngine(f"s3://{BUCKET}/{PLAIN}")


def time_views(
    engine: Any, runs: int, names: list[str] | None = None
) -> dict[str, tuple[float, float]]:
    """(cold, warm) seconds of open-day views: each one's first query, then the median of runs."""
    timings = {}
    for name, where in VIEWS.items():
        if names and name not in names:
            continue
        clock = time.perf_counter()
        engine.view(name, where)
        cold = time.perf_counter() - clock
        warm = []
        for _ in range(runs):
            clock = time.perf_counter()
            engine.view(name, where)
            warm.append(time.perf_counter() - clock)
        timings[name] = (cold, statistics.median(warm))
    return timings


def plain_read_day(table: str, day: date) -> Any:
    """One day of a table as the checks read it before Iceberg: list the prefix, read each."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lake_contract import layout, tables
    from lake_contract.s3 import LakeBucket
    from supermarket_dagster.lake_day import LakeDay

    lake = LakeBucket(BUCKET)
    keys = lake.keys(f"{PLAIN}/{layout.day_prefix(layout.table_prefix(table), day)}")
    parts = [pq.read_table(pa.BufferReader(body)) for body in lake.read_many(keys)]
    rows = pa.concat_tables(parts)
    rows = rows.append_column("dt", pa.array([day] * rows.num_rows, pa.date32()))
    # The rules get the rows in the Iceberg tables' types; the schema check has nothing to add.
    return LakeDay(table, tables.as_table_rows(table, rows), None)


def plain_scan_day(table: str, day: date, rules: Any) -> Any:
    """One day of a table as plain_read_day reads it, handed to the rules at once."""
    from supermarket_dagster.lake_day import ScannedDay, SourceRows

    rows = plain_read_day(table, day).rows
    for rule in rules:
        rule(rows)
    return ScannedDay(table, SourceRows.of(rows), rows.num_rows, None)


def time_checks(layout_name: str, runs: int) -> dict[str, float]:
    """The day checks but reconciliation: the day's rows read as the layout reads them, then
    every rule. Median of runs (after a first, cold one)."""
    import dagster as dg

    from supermarket_dagster import lake_day
    from supermarket_dagster.defs.history import checks
    from supermarket_dagster.resources import LakeResource

    resource = LakeResource(bucket=BUCKET)
    keys = [dg.AssetCheckKey(spec.asset_key, spec.name) for spec in checks.DAY_CHECKS
            if spec.name != "raw_records_reconcile"]  # fmt: skip
    if layout_name == "plain":
        patches = [
            mock.patch.object(lake_day, "read_day", lambda _, t, d, *__: plain_read_day(t, d)),
            mock.patch.object(lake_day, "scan_day",
                              lambda _, t, d, __, rules: plain_scan_day(t, d, rules)),
        ]  # fmt: skip
    else:
        patches = []
    read, total = [], []
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        for _ in range(runs + 1):
            clock = time.perf_counter()
            lake_day.read_day(resource.tables(), "transactions", DAY)
            lake_day.read_day(resource.tables(), "transaction_items", DAY)
            read.append(time.perf_counter() - clock)
            clock = time.perf_counter()
            results = list(checks.day_results(resource, DAY, keys))
            total.append(time.perf_counter() - clock)
            failed = [r for r in results if not r.passed]
            assert not failed, failed
    return {"cold": total[0], "read day": statistics.median(read[1:]),
            "checks": statistics.median(total[1:])}  # fmt: skip


def time_reconcile() -> tuple[float, bool]:
    from lake_contract.s3 import LakeBucket
    from supermarket_dagster import lake_day
    from supermarket_dagster.resources import LakeResource

    lake = LakeResource(bucket=BUCKET).tables()
    transactions = lake_day.read_day(lake, "transactions", DAY)
    items = lake_day.read_day(lake, "transaction_items", DAY)
    clock = time.perf_counter()
    result = lake_day.reconcile_day(
        LakeBucket(BUCKET),
        DAY,
        lake_day.SourceRows.of(transactions.rows),
        lake_day.SourceRows.of(items.rows),
    )
    return time.perf_counter() - clock, result.passed


def metadata_sizes(feed: Feed) -> dict[str, dict[str, float]]:
    """Per Iceberg table: data files and manifests in the current snapshot, the bytes a reader
    plans from (metadata file, manifest list, manifests), and all of metadata/."""
    from lake_contract import layout
    from lake_contract.s3 import LakeBucket
    from lake_contract.tables import LakeTables, glue_catalog

    lake, bucket = LakeTables(glue_catalog(), feed.database), LakeBucket(BUCKET)
    found = {}
    for name in ("transactions", "transaction_items"):
        table = lake.current(name)
        snapshot = table.current_snapshot()
        manifests = snapshot.manifests(table.io)
        sizes = {o.key: o.size for o in bucket.listing(f"{layout.table_prefix(name)}metadata/")}
        key = table.metadata_location.removeprefix(f"s3://{BUCKET}/")
        plan = sizes[key] + sizes[snapshot.manifest_list.removeprefix(f"s3://{BUCKET}/")]
        plan += sum(m.manifest_length for m in manifests)
        found[name] = {
            "data files": sum(m.added_files_count + m.existing_files_count for m in manifests),
            "manifests": len(manifests),
            "snapshots": len(table.metadata.snapshots),
            "metadata file": sizes[key],
            "planned from": plan,
            "metadata/ objects": len(sizes),
            "metadata/ bytes": sum(sizes.values()),
        }
    return found


def plain_sizes() -> tuple[int, int]:
    from lake_contract.s3 import LakeBucket

    objects = list(LakeBucket(BUCKET).listing(f"{PLAIN}/lake/"))
    return len(objects), sum(o.size for o in objects)


def compact_open_day(feed: Feed) -> tuple[dict[str, int], float]:
    """The open day compacted as open_day_compaction does; the snapshots to go back to."""
    from lake_contract.tables import LakeTables, glue_catalog
    from supermarket_dagster.compaction import compact_day

    lake = LakeTables(glue_catalog(), feed.database)
    before = {n: lake.current(n).current_snapshot().snapshot_id
              for n in ("transactions", "transaction_items")}  # fmt: skip
    clock = time.perf_counter()
    for name in before:
        compact_day(lake, name, DAY)
    return before, time.perf_counter() - clock


def roll_up_totals(feed: Feed, mark: datetime) -> float:
    """The day's store totals rolled up through `mark`, as the compaction job does."""
    from lake_contract.tables import LakeTables, glue_catalog
    from supermarket_queries import store_totals

    clock = time.perf_counter()
    lake = LakeTables(glue_catalog(), feed.database)
    for totals in store_totals.ROLLUPS:
        store_totals.roll_up_day(lake, totals, DAY, mark, datetime.now(UTC))
    return time.perf_counter() - clock


def restore(feed: Feed, snapshots: dict[str, int]) -> None:
    from lake_contract.tables import LakeTables, glue_catalog

    lake = LakeTables(glue_catalog(), feed.database)
    for name in ("transaction_items", "transactions"):
        with lake.current(name).manage_snapshots() as manage:
            manage.set_current_snapshot(snapshots[name])


def setup() -> None:
    import boto3

    from lake_contract import layout
    from lake_contract.parquet import parquet_bytes
    from lake_contract.s3 import LakeBucket
    from simulator.reference import generate_skus, generate_supermarkets
    from supermarket_queries.glue import create_catalog

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    create_catalog(boto3.client("glue"), BUCKET)
    lake = LakeBucket(BUCKET)
    for table, rows in (("supermarkets", generate_supermarkets()), ("skus", generate_skus())):
        body = parquet_bytes(rows)
        for prefix in ("", f"{PLAIN}/"):
            lake.write(f"{prefix}{layout.reference_key(table)}", body, "application/x-parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default="0,2000,10000,30000")
    parser.add_argument("--transactions", type=int, default=25, help="per source file (feed)")
    parser.add_argument("--sources-per-commit", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--plain-runs", type=int, default=2)
    parser.add_argument("--check-runs", type=int, default=1, help="warm runs of the day checks")
    parser.add_argument(
        "--plain-up-to",
        type=int,
        default=30_000,
        help="the plain layout is written and measured up to this many files",
    )
    parser.add_argument("--plain-views", default="", help="comma-separated: only these, plain")
    parser.add_argument("--reconcile-up-to", type=int, default=30_000)
    parser.add_argument("--plain-checks-up-to", type=int, default=30_000)
    parser.add_argument("--totals-lag", type=int, default=900,
                        help="files the store totals are behind the feed")  # fmt: skip
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    with moto_server() as endpoint:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1",
                          AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # fmt: skip
        from supermarket_queries.engine import LocalEngine

        setup()
        feed = Feed(args.transactions, args.sources_per_commit, args.plain_up_to)
        plain_views = [v for v in args.plain_views.split(",") if v] or None
        report: list[dict[str, Any]] = []
        for step in steps:
            clock = time.monotonic()
            feed.commit_seconds.clear()
            feed.grow(max(feed.files, step - args.totals_lag))
            mark = datetime.now(UTC)  # what landed until now is in the store totals
            feed.grow(step)
            built = time.monotonic() - clock
            commits = list(feed.commit_seconds)
            print(f"\n== {step:,} source files on the day (grown in {built:.0f} s, {load()})",
                  flush=True)  # fmt: skip
            figures: dict[str, Any] = {"files": step, "commits": commits}
            figures["iceberg views"] = time_views(LocalEngine(f"s3://{BUCKET}"), args.runs)
            plain = step <= args.plain_up_to
            if plain:
                figures["plain views"] = time_views(plain_engine(), args.plain_runs, plain_views)
            if step:
                figures["iceberg checks"] = time_checks("iceberg", args.check_runs)
                if plain and step <= args.plain_checks_up_to:
                    figures["plain checks"] = time_checks("plain", args.check_runs)
                if step <= args.reconcile_up_to:
                    figures["reconcile"] = time_reconcile()
                figures["metadata"] = metadata_sizes(feed)
                if plain:
                    figures["plain objects"] = plain_sizes()
                figures["totals seconds"] = roll_up_totals(feed, mark)
                engine = LocalEngine(f"s3://{BUCKET}")
                figures["totals views"] = time_views(engine, args.runs)
                before, figures["compaction seconds"] = compact_open_day(feed)
                figures["compaction seconds"] += roll_up_totals(feed, mark)
                figures["compacted views"] = time_views(LocalEngine(f"s3://{BUCKET}"), args.runs)
                figures["compacted checks"] = time_checks("iceberg", args.check_runs)
                figures["compacted metadata"] = metadata_sizes(feed)
                restore(feed, before)
            print_step(figures)
            report.append(figures)
        print_summary(report)


def _views_row(label: str, views: dict[str, tuple[float, float]]) -> str:
    cells = [f"{views[n][1]:.3f}" if n in views else "" for n in VIEWS]
    slowest = max(w for _, w in views.values())
    return f"| {label} | " + " | ".join(cells) + f" | **{slowest:.3f}** |"


def print_step(f: dict[str, Any]) -> None:
    print(f"({load()})")
    print("| warm s | " + " | ".join(VIEWS) + " | slowest |")
    print("| --- |" + " ---: |" * (len(VIEWS) + 1))
    rows = (("plain Parquet", "plain views"), ("Iceberg", "iceberg views"),
            ("Iceberg + store totals", "totals views"),
            ("Iceberg + store totals, open day compacted", "compacted views"))  # fmt: skip
    for label, key in rows:
        if key in f:
            print(_views_row(label, f[key]))
    cold = {k.split()[0]: max(c for c, _ in f[k].values())
            for k in ("plain views", "iceberg views") if k in f}  # fmt: skip
    print("slowest cold view: " + ", ".join(f"{k} {v:.3f} s" for k, v in cold.items()))
    if f["commits"]:
        c = f["commits"]
        print(
            f"commits since the last step: {len(c)}, p50 {percentile(c, 0.5):.3f} s, "
            f"p99 {percentile(c, 0.99):.3f} s, max {max(c):.3f} s"
        )
    if "metadata" not in f:
        return
    for key in ("plain checks", "iceberg checks", "compacted checks"):
        if key not in f:
            continue
        c = f[key]
        print(
            f"day checks but reconcile, {key.split()[0]}: read day {c['read day']:.3f} s, "
            f"all {c['checks']:.3f} s (cold {c['cold']:.3f} s)"
        )
    if "reconcile" in f:
        seconds, passed = f["reconcile"]
        print(f"reconcile (raw/ and audit/, either layout): {seconds:.3f} s, passed {passed}")
    if "plain objects" in f:
        objects, size = f["plain objects"]
        print(f"plain layout: {objects:,} objects, {size / 2**20:.1f} MiB")
    print(f"store totals rolled up: {f['totals seconds']:.1f} s")
    print(f"open-day compaction: {f['compaction seconds']:.1f} s (both tables, totals again)")
    for label in ("metadata", "compacted metadata"):
        for table, m in f[label].items():
            print(
                f"{label} {table}: {m['data files']} data files, {m['manifests']} manifests, "
                f"{m['snapshots']} snapshots, metadata file {m['metadata file'] / 1024:.0f} KiB, "
                f"planned from {m['planned from'] / 1024:.0f} KiB, metadata/ "
                f"{m['metadata/ objects']} objects {m['metadata/ bytes'] / 2**20:.1f} MiB"
            )


def print_summary(report: list[dict[str, Any]]) -> None:
    print(f"\nsummary ({load()}): slowest open-day view, warm")
    print("| source files | plain Parquet | Iceberg | Iceberg + store totals | + compacted "
          "| commit p50 / p99 |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for f in report:
        kinds = ("plain views", "iceberg views", "totals views", "compacted views")
        row = [max(w for _, w in f[k].values()) if k in f else None for k in kinds]
        c = f["commits"]
        commits = f"{percentile(c, 0.5):.3f} / {percentile(c, 0.99):.3f} s" if c else ""
        cells = " | ".join(f"{v:.3f} s" if v is not None else "" for v in row)
        print(f"| {f['files']:,} | {cells}"
              + f" | {commits} |")  # fmt: skip
    grown = [f for f in report if f["files"] >= 2000]
    # The goal is judged on the day as the stack serves it: as the committer leaves it, with
    # the store totals as far behind as the stack leaves them.
    for kind in ("totals views", "iceberg views"):
        if not grown:
            break
        worst = max(max(w for _, w in f[kind].values()) for f in grown)
        first = max(w for _, w in grown[0][kind].values())
        last = max(w for _, w in grown[-1][kind].values())
        verdict = "met" if worst < 0.3 else "MISSED"
        print(
            f"goal ({kind}): open-day views warm < 0.3 s: {verdict} (slowest {worst:.3f} s); "
            f"{grown[-1]['files']:,} / {grown[0]['files']:,} files: {last / first:.2f}x"
        )


if __name__ == "__main__":
    main()
