"""Backfill benchmark: a real Dagster backfill of 30 days through the webserver and daemon.

    .venv/bin/python benchmarks/backfill.py [--transactions 100000] [--days 30]
                                            [--max-concurrent-runs 2]

moto server, dagster-webserver and dagster-daemon run as their own processes, as in the local
stack, on a fresh project-local instance (a subprocess per run, at most --max-concurrent-runs
at once). Two backfills are launched over GraphQL, as the UI launches them, and timed from
launch to every partition materialized:

1. history: raw_history_logs + transactions + transaction_items, --transactions over --days
   (one run per day: generate the day's logs, then convert them);
2. tables only: transactions + transaction_items again over the same days (the
   Glue-equivalent job alone, on the logs already there).

Then the run of the second backfill that holds the middle day is compared with `supermarket
convert` on the same days' files, downloaded locally, as a whole process: transactions/s of
each, and the ratios, which are Dagster's overhead per run (with and without the run's own
process start).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import boto3

from lake_contract import layout
from lake_contract.tables import COMMIT_LOCK_VARIABLE
from supermarket_cli.dagster_graphql import DagsterGraphQL
from supermarket_cli.dagster_instance import running_dagster, write_instance_config
from supermarket_cli.processes import free_port
from supermarket_cli.stack.children import moto_server
from supermarket_queries.glue import create_catalog

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench-backfill"
FIRST_DAY = date(2025, 6, 1)
HISTORY = ["raw_history_logs", "transactions", "transaction_items"]
TABLES = ["transactions", "transaction_items"]


def peak_concurrency(runs: list[dict], start: str) -> int:
    """Most runs in progress at the same moment, from their `start` and end times."""
    edges = sorted([(r[start], 1) for r in runs] + [(r["end"], -1) for r in runs])
    peak = current = 0
    for _, change in edges:
        current += change
        peak = max(peak, current)
    return peak


def timed_backfill(
    dagster: DagsterGraphQL, assets: list[str], days: list[str], run_config: dict, title: str
) -> dict:
    began = time.time()
    backfill = dagster.launch_backfill(assets, days, run_config=run_config, title=title)
    result = dagster.wait_backfill(
        backfill,
        timeout=3600,
        progress=lambda p: print(f"  [{time.time() - began:5.0f}s] {p.line()}"),
    )
    wall = time.time() - began
    runs = result["runs"]
    for run in runs:
        run["launch"] = run_times(dagster, run["run_id"])["launchTime"]
    first_start = min(r["launch"] for r in runs)
    starting = statistics.median(r["start"] - r["launch"] for r in runs)
    executing = statistics.median(r["end"] - r["start"] for r in runs)
    print(f"{title}: {len(days)} partitions in {len(runs)} runs, launch -> all materialized "
          f"{wall:.1f} s; first run launched {first_start - began:.1f} s after the backfill "
          f"(the daemon's backfill tick); at most {peak_concurrency(runs, 'launch')} runs in "
          f"progress at once, {peak_concurrency(runs, 'start')} executing (past their "
          f"process start)")  # fmt: skip
    print(f"  per run (median): {starting:.1f} s from launch to executing (a new process "
          f"imports Dagster and loads the definitions), then {executing:.1f} s "
          f"executing")  # fmt: skip
    return {"wall": wall, "runs": runs, "began": began, "first_start": first_start}


def run_times(dagster: DagsterGraphQL, run_id: str) -> dict[str, float]:
    """When the run was queued, launched (its process started), started executing, ended."""
    data = dagster.query(
        """query Times($id: ID!) { runOrError(runId: $id) { ... on Run { creationTime
             stats { ... on RunStatsSnapshot { launchTime startTime endTime } } } } }""",
        {"id": run_id},
    )
    run = data["runOrError"]
    return {"creationTime": run["creationTime"], **run["stats"]}


def step_seconds(dagster: DagsterGraphQL, run_id: str) -> dict[str, float]:
    data = dagster.query(
        """query Steps($id: ID!) { runOrError(runId: $id) {
             ... on Run { creationTime stepStats { stepKey startTime endTime } } } }""",
        {"id": run_id},
    )
    return {s["stepKey"]: s["endTime"] - s["startTime"] for s in data["runOrError"]["stepStats"]}


def convert_days(s3, days: list[str], work: Path) -> tuple[float, int]:
    """`supermarket convert` on these days' raw logs, downloaded first, as one whole process:
    (seconds, transactions)."""
    source = work / "raw"
    source.mkdir(parents=True)
    transactions = 0
    for day in days:
        prefix = layout.day_prefix(layout.RAW_HISTORY, date.fromisoformat(day))
        for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
            body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
            (source / Path(obj["Key"]).name).write_bytes(body)
            transactions += sum(1 for line in body.splitlines() if line.strip())
    began = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).parent / "supermarket"), "convert", str(source),
         "--out", str(work / "out")],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - began, transactions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--max-concurrent-runs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the Dagster home and logs here")
    parser.add_argument(
        "--workspace",
        default="workspace.yaml",
        help="another code location to measure, e.g. a variant with a BackfillPolicy",
    )
    args = parser.parse_args()

    days = [(FIRST_DAY + timedelta(days=i)).isoformat() for i in range(args.days)]
    per_day = -(-args.transactions // args.days)
    with moto_server() as endpoint:
        aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}  # fmt: skip
        os.environ.update(aws)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        create_catalog(boto3.client("glue"), BUCKET)  # the Iceberg tables, as `up` creates them
        env = {**os.environ, **aws, "LAKE_BUCKET": BUCKET}
        with tempfile.TemporaryDirectory(prefix="supermarket-backfill-") as tmp:
            work = args.keep or Path(tmp)
            # The runs commit from their own processes: they take turns, as in the stack.
            env[COMMIT_LOCK_VARIABLE] = str(work / "commit.lock")
            home = work / "dagster_home"
            write_instance_config(home, max_concurrent_runs=args.max_concurrent_runs)
            began = time.perf_counter()  # started as `up` starts them: ready = assets loaded
            servers_cm = running_dagster(
                home, free_port(), env, log_dir=work, workspace=args.workspace
            )
            with servers_cm as servers:
                dagster = DagsterGraphQL(servers.url)
                dagster.wait_ready(timeout=0)
                print(f"webserver ready in {time.perf_counter() - began:.1f} s; "
                      f"{args.transactions:,} transactions over {args.days} days "
                      f"({per_day:,}/day), "
                      f"max {args.max_concurrent_runs} at once")  # fmt: skip
                history = timed_backfill(
                    dagster,
                    HISTORY,
                    days,
                    {"ops": {"raw_history_logs": {"config": {"transactions_per_day": per_day}}},
                     },
                    "history backfill (raw logs + tables)",
                )  # fmt: skip
                tables = timed_backfill(dagster, TABLES, days, {}, "tables-only backfill")
                # A run over a range records each day with the run's total: count each run once.
                written = sum(
                    next(
                        m["metadata"]["rows"]
                        for m in dagster.run_materializations(run["run_id"])
                        if m["asset_key"] == "transactions"
                    )
                    for run in tables["runs"]
                )
                print(f"  transactions written by the tables-only backfill: {written:,}")
                # The run holding the middle day (one day, or a range with a BackfillPolicy).
                middle = days[len(days) // 2]
                sample = next(r for r in tables["runs"] if middle in r["partitions"])
                sample_steps = step_seconds(dagster, sample["run_id"])
            convert_seconds, transactions = convert_days(s3, sample["partitions"], work)

    for label, result in (("history", history), ("tables-only", tables)):
        print(f"{label}: {args.transactions / result['wall']:,.0f} txn/s over the whole backfill "
              f"({result['wall']:.1f} s)")  # fmt: skip
    whole = sample["end"] - sample["launch"]
    run_seconds = sample["end"] - sample["start"]
    step = sample_steps.get("history_backfill", float("nan"))
    covered = sample["partitions"]
    span = covered[0] if len(covered) == 1 else f"{covered[0]}..{covered[-1]}"
    print(f"\none run of the tables-only backfill ({span}, {transactions:,} transactions):")
    print(f"  Dagster run, launch -> end (its own process starting, then executing): "
          f"{whole:.2f} s, {transactions / whole:,.0f} txn/s")  # fmt: skip
    print(f"  Dagster run, start -> end (executing): {run_seconds:.2f} s, "
          f"{transactions / run_seconds:,.0f} txn/s; of which the history_backfill step "
          f"{step:.2f} s, {transactions / step:,.0f} txn/s")  # fmt: skip
    print(f"  supermarket convert (same files, local, whole process): {convert_seconds:.2f} s, "
          f"{transactions / convert_seconds:,.0f} txn/s")  # fmt: skip
    print(f"  Dagster overhead (time / convert's): launch -> end {whole / convert_seconds:.1f}x, "
          f"start -> end {run_seconds / convert_seconds:.1f}x, "
          f"step {step / convert_seconds:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
