"""A log delivered again into a grown, compacted open day: what it costs, and how long it holds
the commit lock (which every other batch of the stack waits for).

    .venv/bin/python benchmarks/redelivery.py [--sources 600] [--transactions 500] [--again 6]

A moto server runs as its own process on loopback. --sources live logs of --transactions
baskets each land through the Lambda's own `land`, in batches of 10, and the day is compacted
as the open day's schedule does it (a few large files per table). Then --again of those logs are
delivered again, one at a time, alternating two ways, in the same run:

- replace (the baseline: every redelivery before `unchanged_sources`): its rows are committed
  again, their old copies deleted in the same commit, which rewrites the compacted files that
  hold them, under the lock;
- land: what the Lambda does now: the unchanged source is found in the lake, audited again,
  and not committed.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from moto_lake import moto_lake

BUCKET = "redelivery-bench"
BATCH = 10


def land_day(sources: int, transactions: int) -> list[str]:
    """The day's logs, landed as the Lambda lands them; their keys."""
    import numpy as np

    from lake_contract import tables
    from lake_contract.s3 import LakeBucket
    from lambda_ingest import handler
    from lambda_ingest.events import SourceObject
    from simulator.baskets import draw_baskets, sequence_ids, to_ndjson
    from simulator.reference import build_reference

    reference = build_reference(20, 2000, 0)
    rng = np.random.default_rng(0)
    lake = LakeBucket(BUCKET)
    day = datetime.now(UTC).date()
    database = tables.database_from_environment()
    keys = []
    for first in range(0, sources, BATCH):
        batch = []
        for s in range(first, min(first + BATCH, sources)):
            key = f"raw/incoming/dt={day}/till-{s:05d}.ndjson"
            now_ms = int(time.time() * 1000)
            ids = sequence_ids(f"R{s}-", 0, transactions, 6)
            body = to_ndjson(draw_baskets(rng, reference, ids, np.full(transactions, now_ms)))
            lake.write(key, body)
            batch.append(handler.convert(SourceObject(BUCKET, key, len(body), None), BUCKET))
            keys.append(key)
        handler.land(batch, database)
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=600)
    parser.add_argument("--transactions", type=int, default=500)
    parser.add_argument("--again", type=int, default=6, help="logs delivered again (even)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    with moto_lake(BUCKET):
        from lake_contract import tables
        from lambda_ingest import committer, handler
        from lambda_ingest.events import SourceObject
        from supermarket_dagster import compaction

        began = time.perf_counter()
        keys = land_day(args.sources, args.transactions)
        landed = time.perf_counter() - began
        database = tables.database_from_environment()
        lake = handler.lake_tables(database)
        day = datetime.now(UTC).date()
        began = time.perf_counter()
        for name in committer.COMMIT_ORDER:
            done = compaction.compact_day(lake, name, day)
            print(f"  {name}: {done.rows:,} rows, {done.files_before} files -> "
                  f"{done.files_written} ({done.bytes_written / 2**20:.1f} MiB)")  # fmt: skip
        print(f"{len(keys)} logs x {args.transactions} baskets landed in {landed:.1f} s, "
              f"compacted in {time.perf_counter() - began:.1f} s")  # fmt: skip

        replace, replace_locked, land = [], [], []
        step = max(1, len(keys) // args.again)
        for n, key in enumerate(keys[::step][: args.again]):
            converted = handler.convert(SourceObject(BUCKET, key, 0, None), BUCKET)
            assert converted is not None
            clock = time.perf_counter()
            if n % 2 == 0:
                staged = committer.stage(lake, [(key, converted.result)])
                locked = time.perf_counter()
                done = committer.commit_staged(lake, staged, {})
                assert done.replaced_sources == {key}
                replace_locked.append(time.perf_counter() - locked)
                replace.append(time.perf_counter() - clock)
            else:
                before = lake.current("transaction_items").current_snapshot().snapshot_id
                handler.land([converted], database)
                land.append(time.perf_counter() - clock)
                after = lake.current("transaction_items").current_snapshot().snapshot_id
                assert after == before, "an unchanged log was committed again"
            print(f"  again {n + 1}: {'replace' if n % 2 == 0 else 'land'} "
                  f"{(time.perf_counter() - clock) * 1000:.0f} ms")  # fmt: skip
        rows = lake.current("transactions").scan().to_arrow().num_rows

    expected = len(keys) * args.transactions
    print(f"transactions in the lake after: {rows:,} of {expected:,}")
    ms = lambda values: statistics.median(values) * 1000  # noqa: E731
    print(f"replace (baseline): median {ms(replace):.0f} ms a redelivery, of which "
          f"{ms(replace_locked):.0f} ms holding the commit lock")  # fmt: skip
    print(f"land (unchanged, not committed): median {ms(land):.0f} ms, 0 ms holding the lock "
          f"({ms(replace) / ms(land):.1f}x faster)")  # fmt: skip
    if rows != expected:
        raise SystemExit("the lake does not hold every transaction once")


if __name__ == "__main__":
    main()
