"""Measures the cost model's inputs on the moto-backed lake and writes the result file that
`supermarket cost` reads (supermarket_cost/measured_inputs.json), with its date and machine.

    .venv/bin/python benchmarks/cost_inputs.py [--small] [--out FILE]

A counting moto server runs as its own process; every request reaching it is counted by
service, billed tier, object kind and operation. Measured: the Lambda handler on SQS batches
of live logs (duration, peak RSS, requests, log bytes, fitted per batch, per log and per
transaction), compaction of the live day, housekeeping, the audit sensors' reads, bytes per
transaction before and after compaction with the Iceberg metadata, history days backfilled as
the history asset does, and the Parquet bytes each view of a dashboard refresh reads.
"""

import argparse
import os
import subprocess
import time
from pathlib import Path

from supermarket_cost.inputs import INPUTS_FILE, save_inputs
from supermarket_cost.measure import FULL, SMALL, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick run (for the tests)")
    parser.add_argument("--out", type=Path, default=INPUTS_FILE)
    args = parser.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    began = time.perf_counter()
    inputs = measure(SMALL if args.small else FULL)
    print(f"measured in {time.perf_counter() - began:.0f} s, load {os.getloadavg()[0]:.2f}")
    b = inputs.batches
    print(f"\nLambda batch: {b.seconds.fixed * 1000:.0f} ms + {b.seconds.per_file * 1000:.1f} ms "
          f"a log + {b.seconds.per_transaction * 1e6:.1f} us a transaction; peak RSS "
          f"{b.peak_rss_mb:.0f} MB ({b.samples} batches)")  # fmt: skip
    for kind, f in sorted(b.requests.items()):
        print(f"  {kind:48} {f.fixed:6.2f} a batch + {f.per_file:5.2f} a log")
    s = inputs.storage
    print(f"\nbytes a transaction: raw {s.raw_bytes_per_transaction:.0f}, Lambda's files "
          f"{s.data_bytes_per_transaction_small:.1f}, compacted "
          f"{s.data_bytes_per_transaction_compacted:.1f}; Iceberg metadata "
          f"{s.metadata_bytes / 1e3:.0f} KB, a metadata file {s.metadata_json_bytes / 1e3:.1f} KB; "
          f"audit record {s.audit_bytes_per_file:.0f} B")  # fmt: skip
    c = inputs.compaction
    print(f"compaction: {c.seconds_fixed:.2f} s + {c.seconds_per_mb:.2f} s a MB rewritten")
    print("\ndashboard refresh (Parquet bytes read per transaction in the query's scope):")
    for q in inputs.dashboard:
        scope = "every day" if q.scope_days is None else f"{q.scope_days} days"
        print(f"  {q.view:22} {scope:>10} {q.bytes_per_scoped_transaction:8.2f} B "
              f"{q.s3_gets:4} GETs {q.glue_requests:2} Glue")  # fmt: skip
    t = inputs.throughput
    start = inputs.dagster.run_worker_start_seconds
    print(f"\ntransform {t.transform_seconds_per_raw_mb:.3f} s a raw MB; backfill "
          f"{t.backfill_seconds_fixed:.2f} s + {t.backfill_seconds_per_transaction * 1e6:.1f} us "
          f"a transaction; a run worker's imports {start:.1f} s")  # fmt: skip
    print(f"\nwrote {save_inputs(inputs, args.out)}")


if __name__ == "__main__":
    main()
