"""Foundation benchmark: `supermarket convert` against a bare pyarrow pipeline, and the generator.

    .venv/bin/python benchmarks/foundation.py [--transactions 500000] [--runs 5]
                                              [--history 10000000] [--keep DIR]

Both converters run as whole processes on the same NDJSON file (two UTC days, so convert's
per-day split is exercised), alternating, and the medians are compared. The bar is convert
<= 1.25x the bare pipeline with every validation on. Then `generate history` is timed and its
peak RSS measured at a tenth of --history and at --history: flat memory means equal peaks.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUPERMARKET = [sys.executable, "-m", "supermarket_cli.main"]

# The baseline the issue names: read_json -> list_flatten/list_parent_indices -> 2 write_tables.
BARE_PIPELINE = """
import sys
import pyarrow as pa, pyarrow.compute as pc, pyarrow.json as pj, pyarrow.parquet as pq
source, out = sys.argv[1], sys.argv[2]
log = pj.read_json(source)
items = log["items"]
flat = pc.list_flatten(items)
parents = pc.list_parent_indices(items)
transaction_items = pa.Table.from_arrays(
    [pc.take(log["transaction_id"], parents), *flat.flatten()],
    names=["transaction_id", *[f.name for f in flat.type]],
)
pq.write_table(log.drop_columns(["items"]), out + "/transactions.parquet")
pq.write_table(transaction_items, out + "/transaction_items.parquet")
"""


def run(command: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (MiB, largest process of the tree) and CPU seconds (user + system)
    of one command."""
    # With PYTHONDONTWRITEBYTECODE set, convert would compile its ~40 modules on every run,
    # which the bare script (pyarrow only, compiled at install) never pays.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - began
    if status != 0:
        raise SystemExit(f"failed ({status}): {' '.join(command)}")
    return elapsed, usage.ru_maxrss // 1024, usage.ru_utime + usage.ru_stime


def make_log(work: Path, transactions: int) -> Path:
    """One NDJSON file of `transactions` baskets spanning two UTC days."""
    raw = work / "generated"
    run(
        [
            *SUPERMARKET,
            *("generate", "history", "--out", str(raw), "--seed", "7"),
            *("--transactions", str(transactions), "--start", "2026-03-01", "--end", "2026-03-02"),
            *("--file-transactions", str(transactions)),
        ]
    )
    log = work / "two-days.ndjson"
    with log.open("wb") as out:
        for part in sorted(raw.rglob("*.ndjson")):
            out.write(part.read_bytes())
    shutil.rmtree(raw)
    return log


def compare_converters(work: Path, log: Path, runs: int) -> None:
    commands = {
        "bare pyarrow": [sys.executable, "-c", BARE_PIPELINE, str(log), str(work / "bare")],
        "supermarket convert": [*SUPERMARKET, "convert", str(log), "--out", str(work / "lake")],
    }
    (work / "bare").mkdir()
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():  # alternating: drift hits both alike
            seconds, _, cpu_seconds = run(command)
            times[name].append(seconds)
            cpu[name].append(cpu_seconds)
    size = log.stat().st_size / 1e6
    print(f"\nconvert: {log.name}, {size:,.0f} MB NDJSON, {runs} alternating runs each")
    for name, samples in times.items():
        print(
            f"  {name:22} median {statistics.median(samples):.2f}s  (min {min(samples):.2f}s)"
            f"  CPU median {statistics.median(cpu[name]):.2f}s"
        )
    ours, bare = times["supermarket convert"], times["bare pyarrow"]
    ratio = statistics.median(ours) / statistics.median(bare)
    verdict = "meets" if ratio <= 1.25 else "MISSES"
    print(f"  ratio of medians convert / bare: {ratio:.2f}x ({verdict} the 1.25x bar)")
    # The baseline's own run-to-run spread moves the ratio; the best runs show it without.
    print(f"  ratio of best runs: {min(ours) / min(bare):.2f}x")
    # CPU time moves less than wall time when other work shares the cores.
    cpu_ratio = statistics.median(cpu["supermarket convert"]) / statistics.median(
        cpu["bare pyarrow"]
    )
    print(f"  ratio of CPU medians: {cpu_ratio:.2f}x")


def measure_generator(work: Path, transactions: int) -> None:
    print(f"\ngenerate history (12,000 SKUs, 5 stores, 30 days, {os.cpu_count()} cores)")
    for count in (transactions // 10, transactions):
        for workers in (1, 2):
            out = work / f"history-{count}-{workers}"
            seconds, peak, _ = run(
                [
                    *SUPERMARKET,
                    *("generate", "history", "--out", str(out), "--transactions", str(count)),
                    *("--start", "2026-01-01", "--end", "2026-01-30", "--workers", str(workers)),
                ]
            )
            size = sum(p.stat().st_size for p in out.rglob("*.ndjson")) / 1e9
            shutil.rmtree(out)
            print(
                f"  {count:>11,} txns, {workers} worker(s): {seconds:6.1f}s, "
                f"{count / seconds:>9,.0f} txn/s, peak RSS {peak:,} MiB, {size:.2f} GB written"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--history", type=int, default=10_000_000, help="0: skip the generator")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="supermarket-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        log = make_log(work, args.transactions)
        compare_converters(work, log, args.runs)
        if args.history:
            measure_generator(work, args.history)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
