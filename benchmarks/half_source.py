"""What a reader sees between a batch's two commits (transaction_items, then transactions).

    .venv/bin/python benchmarks/half_source.py [--batches 200] [--sources 4] [--transactions 25]

A moto server runs as its own process on loopback. A committer lands --batches batches of
--sources live logs each through the Lambda's own `land` (one commit per table per batch, items
first), while a DuckDB reader (the `supermarket query` engine, which looks transactions up
before items) queries back to back how many items have no transaction and how many transactions
have no items. Printed: the gap between each batch's two commits (from the snapshots' own
timestamps), and what the reader saw and for how long.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from moto_lake import moto_lake

BUCKET = "half-source-bench"
ORPHAN_ITEMS = """SELECT count(*) FROM transaction_items i WHERE NOT EXISTS
    (SELECT 1 FROM transactions t WHERE t.transaction_id = i.transaction_id)"""
BARE_TRANSACTIONS = """SELECT count(*) FROM transactions t WHERE NOT EXISTS
    (SELECT 1 FROM transaction_items i WHERE i.transaction_id = t.transaction_id)"""


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def commit_batches(batches: int, sources: int, transactions: int, gaps: list[float]) -> None:
    import numpy as np

    from lake_contract import tables
    from lake_contract.s3 import LakeBucket
    from lambda_ingest import handler
    from lambda_ingest.events import SourceObject
    from simulator.baskets import draw_baskets, sequence_ids, to_ndjson
    from simulator.reference import build_reference

    reference = build_reference(5, 2000, 0)
    rng = np.random.default_rng(0)
    lake = LakeBucket(BUCKET)
    day = datetime.now(UTC).date()
    database = tables.database_from_environment()
    lake_tables = handler.lake_tables(database)
    for b in range(batches):
        batch = []
        for s in range(sources):
            key = f"raw/incoming/dt={day}/half-{b:05d}-{s}.ndjson"
            now_ms = int(time.time() * 1000)
            ids = sequence_ids(f"H{b}-{s}-", 0, transactions, 6)
            body = to_ndjson(draw_baskets(rng, reference, ids, np.full(transactions, now_ms)))
            lake.write(key, body)
            source = SourceObject(BUCKET, key, len(body), None)
            batch.append(handler.convert(source, BUCKET))
        records = handler.land(batch, database)
        snapshots = {o.split(".", 1)[1].split("@")[0]: int(o.rsplit("@", 1)[1])
                     for o in records[0].outputs if "@" in o}  # fmt: skip
        stamps = {t: lake_tables.current(t).snapshot_by_id(i).timestamp_ms
                  for t, i in snapshots.items()}  # fmt: skip
        gaps.append((stamps["transactions"] - stamps["transaction_items"]) / 1000)


def read_back_to_back(done: threading.Event, seen: list[tuple[float, int, int]]) -> None:
    from supermarket_queries.engine import LocalEngine

    engine = LocalEngine(f"s3://{BUCKET}")
    while not done.is_set():
        began = time.perf_counter()
        orphans = engine.query(ORPHAN_ITEMS).column(0)[0].as_py()
        bare = engine.query(BARE_TRANSACTIONS, follow=False).column(0)[0].as_py()
        seen.append((began, orphans, bare))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--transactions", type=int, default=25)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    with moto_lake(BUCKET):
        gaps: list[float] = []
        seen: list[tuple[float, int, int]] = []
        done = threading.Event()
        reader = threading.Thread(target=read_back_to_back, args=(done, seen))
        reader.start()
        began = time.perf_counter()
        commit_batches(args.batches, args.sources, args.transactions, gaps)
        elapsed = time.perf_counter() - began
        done.set()
        reader.join()

    print(f"{args.batches} batches of {args.sources} logs x {args.transactions} transactions "
          f"in {elapsed:.1f}s; load average {os.getloadavg()[0]:.1f} at the end")  # fmt: skip
    print(f"gap between a batch's items commit and its transactions commit: "
          f"p50 {statistics.median(gaps) * 1000:.0f} ms, p99 {_q(gaps, 0.99) * 1000:.0f} ms, "
          f"max {max(gaps) * 1000:.0f} ms")  # fmt: skip
    with_orphans = [s for s in seen if s[1]]
    runs, start = [], None
    for at, orphans, _ in seen:  # how long, back to back, the reader kept seeing orphans
        if orphans and start is None:
            start = at
        if not orphans and start is not None:
            runs.append(at - start)
            start = None
    print(f"reader: {len(seen)} query pairs; {len(with_orphans)} saw items with no transaction "
          f"(up to {max((s[1] for s in seen), default=0)} lines, i.e. one batch's), "
          f"{sum(1 for s in seen if s[2])} saw a transaction with no items")  # fmt: skip
    if runs:
        longest = max(runs) * 1000
        print(f"longest stretch of back-to-back queries seeing orphan items: {longest:.0f} ms")


if __name__ == "__main__":
    main()
