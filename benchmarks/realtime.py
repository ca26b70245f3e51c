"""Real-time path benchmark: S3 PUT -> SQS -> local Lambda runtime -> Iceberg commit -> rows
returned by a DuckDB query.

    .venv/bin/python benchmarks/realtime.py [--rate 3] [--seconds 60] [--transactions 25]
                                            [--large 500000] [--runtime-args "--concurrency 2"]

moto server runs as its own process on a free loopback port and `supermarket lambda-runtime`
as another, exactly as in the local stack (Glue tables from create_catalog, the commit lock
file). Files of --transactions baskets (the feed's file size) are PUT at a steady --rate (3/s:
the stack's feed at 2 files/s plus its benchmark's probe at 1/s) for --seconds. Beside them the
`supermarket query` engine runs one query back to back, today's source keys of this run; a
file's latency is from the start of its PUT to the end of the first query that returns it.
The runtime's first file (its imports and table loads, a cold start) lands before the timing
starts. Each is split with its audit record: PUT -> the handler starts on it (notification, queue,
poll), -> committed (read, transform, lock, commit, both tables), -> returned by a query (the
reader: the query in flight when the commit landed, then the next). The runtime's log gives the
batch sizes and the commit alone. Goal: p50 < 0.5 s and p99 < 1.5 s. Then the handler's
throughput on one --large file is compared with `supermarket convert` on the same file.
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from supermarket_cli.processes import Supervisor, wait_until  # noqa: E402 (after the path)
from supermarket_cli.stack import children  # noqa: E402
from supermarket_cli.stack.children import moto_server  # noqa: E402

BUCKET = "bench-lake"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def figures(values: list[float]) -> str:
    p50, p95, p99 = (percentile(values, q) for q in (0.5, 0.95, 0.99))
    return f"p50 {p50:.3f} s, p95 {p95:.3f} s, p99 {p99:.3f} s, max {max(values):.3f} s"


def audit_records() -> dict[str, dict]:
    """source key -> its (latest) audit record."""
    from lake_contract import layout
    from lake_contract.s3 import LakeBucket

    lake = LakeBucket(BUCKET)
    keys = lake.keys(layout.AUDIT)
    records = [json.loads(body) for body in lake.read_many(keys)]
    return {r["source_key"]: r for r in sorted(records, key=lambda r: r["finished_at"])}


def ingest_log(path: Path) -> list[dict]:
    """The runtime's 'ingested' lines, one per source."""
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{") and '"ingested"' in line:
            lines.append(json.loads(line))
    return lines


def steady_feed(args: argparse.Namespace, work: Path) -> None:
    import boto3

    from lake_contract import tables
    from simulator.payment_processor import FeedOptions, PaymentProcessor
    from supermarket_cli.local_aws import provision_ingest
    from supermarket_queries.engine import LocalEngine
    from supermarket_queries.glue import create_catalog

    queues = provision_ingest(BUCKET)
    create_catalog(boto3.client("glue"), BUCKET)
    env = dict(os.environ) | {tables.COMMIT_LOCK_VARIABLE: str(work / "commit.lock")}
    runtime = Supervisor(work / "logs")  # the runtime as the stack runs it, with its log
    spec = children.lambda_runtime(queues.queue_url, env)
    spec.argv.extend(shlex.split(args.runtime_args))
    runtime.start(spec)
    feed = PaymentProcessor(
        FeedOptions(
            location=f"s3://{BUCKET}",
            transactions_per_second=args.transactions * args.rate,
            files_per_second=args.rate,
        )
    )
    engine = LocalEngine(f"s3://{BUCKET}")
    put_at: dict[str, float] = {}  # source key -> time.time() at the start of its PUT
    seen_at: dict[str, float] = {}
    query_seconds: list[float] = []
    lock = threading.Lock()
    done = threading.Event()
    today = datetime.now(UTC).date()
    prefix = f"raw/incoming/dt={today}/{feed.producer_id}-"
    sql = (f"SELECT DISTINCT source_key FROM transactions WHERE dt = DATE '{today}' "
           f"AND starts_with(source_key, '{prefix}')")  # fmt: skip

    def read() -> None:
        give_up = None
        while True:
            began = time.time()
            keys = engine.query(sql).column("source_key").to_pylist()
            ended = time.time()
            query_seconds.append(ended - began)
            with lock:
                for key in keys:
                    seen_at.setdefault(key, ended)
                caught_up = put_at.keys() <= seen_at.keys()  # the warm-up file is not in put_at
            if done.is_set():
                give_up = give_up or ended + 30
                if caught_up or ended > give_up:
                    return

    # A long-running runtime is warm: its first batch (imports, table loads) is not measured.
    warm_up = feed.write_file()
    wait_until(lambda: warm_up in engine.query(sql).column("source_key").to_pylist(), 300, 0.2,
               "the runtime's first file never landed")  # fmt: skip
    reader = threading.Thread(target=read)
    reader.start()
    interval = 1.0 / args.rate
    began = next_at = time.perf_counter()
    while time.perf_counter() - began < args.seconds:
        start = time.time()
        key = feed.write_file()
        with lock:
            put_at[key] = start
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    done.set()
    reader.join()
    runtime.stop_all()

    audits = audit_records()
    latencies = [seen_at[k] - put_at[k] for k in put_at if k in seen_at]
    parts: dict[str, list[float]] = {"queue": [], "handler": [], "reader": []}
    for key, put in put_at.items():
        record = audits.get(key)
        if key not in seen_at or record is None:
            continue
        started = datetime.fromisoformat(record["started_at"]).timestamp()
        finished = datetime.fromisoformat(record["finished_at"]).timestamp()
        parts["queue"].append(started - put)
        parts["handler"].append(finished - started)
        parts["reader"].append(seen_at[key] - finished)
    logged = ingest_log(work / "logs" / "lambda-runtime.log")
    batches = {(line["batch_ms"], line["commit_ms"]): line["batch_sources"] for line in logged}
    rows = engine.query(f"SELECT count(*) AS n FROM transactions WHERE dt = DATE '{today}'")
    print(f"\nsteady feed: {len(put_at)} files at {args.rate}/s for {args.seconds:.0f} s, "
          f"{args.transactions} transactions each; moto and the runtime "
          f"({args.runtime_args or 'its defaults'}) in own processes; "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    print(f"  returned by a query: {len(latencies)} of {len(put_at)} files; rows "
          f"{rows.column('n')[0].as_py():,} of {feed.stats.transactions:,} written")  # fmt: skip
    print(f"  PUT -> returned by a DuckDB query: {figures(latencies)}")
    for name, what in (("queue", "PUT -> handler starts (notification, queue, poll)"),
                       ("handler", "handler starts -> committed (read, transform, commit)"),
                       ("reader", "committed -> returned by a query")):  # fmt: skip
        print(f"    {what}: {figures(parts[name])}")
    commits = [commit / 1000 for _, commit in batches]
    sizes = list(batches.values())
    print(f"  batches: {len(batches)}, sources per batch mean {statistics.mean(sizes):.2f}, "
          f"max {max(sizes)}; commit alone (lock included): {figures(commits)}")  # fmt: skip
    print(f"  DuckDB query: {len(query_seconds)} runs, {figures(query_seconds)}")
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    verdict = "met" if p50 < 0.5 and p99 < 1.5 else "MISSED"
    print(f"  goal p50 < 0.5 s and p99 < 1.5 s: {verdict}")


def large_file(args: argparse.Namespace, work: Path) -> None:
    import boto3

    from lambda_ingest.handler import lambda_handler

    raw = work / "raw"
    subprocess.run(
        [sys.executable, "-m", "supermarket_cli.main", "generate", "history", "--out", str(raw),
         "--transactions", str(args.large), "--start", "2026-03-01", "--end", "2026-03-01",
         "--file-transactions", str(args.large), "--seed", "9"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    (log,) = raw.rglob("*.ndjson")
    key = f"raw/incoming/dt=2026-03-01/large-{uuid.uuid4().hex[:6]}.ndjson"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=log.read_bytes())
    event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]}  # fmt: skip
    began = time.perf_counter()
    lambda_handler(event, None)
    handler_seconds = time.perf_counter() - began
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "supermarket_cli.main", "convert", str(log), "--out",
         str(work / "out")],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    convert_seconds = time.perf_counter() - began
    size = log.stat().st_size / 1e6
    print(f"\none large file: {args.large:,} transactions, {size:,.0f} MB")
    print(f"  handler (S3 get + transform + Iceberg commit + audit, moto): {handler_seconds:.2f}s, "
          f"{args.large / handler_seconds:,.0f} txn/s")  # fmt: skip
    print(f"  supermarket convert (local files, whole process): {convert_seconds:.2f}s, "
          f"{args.large / convert_seconds:,.0f} txn/s")  # fmt: skip
    print(f"  ratio handler / convert: {handler_seconds / convert_seconds:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=3.0, help="files per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--transactions", type=int, default=25, help="per file")
    parser.add_argument("--large", type=int, default=500_000, help="0: skip the large file")
    parser.add_argument("--runtime-args", default="", help="appended to lambda-runtime's argv")
    args = parser.parse_args()
    with moto_server() as endpoint:
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
        )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="supermarket-rt-") as work:
            steady_feed(args, Path(work))
            if args.large:
                large_file(args, Path(work))


if __name__ == "__main__":
    main()
