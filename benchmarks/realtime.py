"""Real-time path benchmark: S3 PUT -> SQS -> local Lambda runtime -> rows visible in the lake.

    .venv/bin/python benchmarks/realtime.py [--rate 20] [--seconds 60] [--transactions 25]
                                            [--large 500000]

moto server runs as its own process on a free loopback port and `supermarket lambda-runtime`
as another, exactly as in the local stack. Files of --transactions baskets are PUT at a steady
--rate for --seconds; a watcher HEADs each file's lake object until it exists. Latency is from
the start of the PUT to the object being visible; afterwards every row is read back and
counted. Goal: p50 < 1 s and p99 < 2 s. Then the handler's throughput on one --large file is
compared with `supermarket convert` on the same file, in the same run.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from supermarket_cli.processes import Supervisor
from supermarket_cli.stack import children
from supermarket_cli.stack.children import moto_server

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench-lake"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def steady_feed(args: argparse.Namespace) -> None:
    import boto3
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lake_contract import layout
    from simulator.payment_processor import FeedOptions, PaymentProcessor
    from supermarket_cli.local_aws import provision_ingest

    queues = provision_ingest(BUCKET)
    runtime = Supervisor(None)  # the runtime as the stack runs it, its output discarded
    runtime.start(children.lambda_runtime(queues.queue_url, os.environ))
    s3 = boto3.client("s3")
    feed = PaymentProcessor(
        FeedOptions(
            location=f"s3://{BUCKET}",
            transactions_per_second=args.transactions * args.rate,
            files_per_second=args.rate,
        )
    )
    put_at: dict[str, float] = {}
    visible_at: dict[str, float] = {}
    pending: dict[str, str] = {}  # lake key -> source key
    lock = threading.Lock()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set() or pending:
            with lock:
                waiting = list(pending.items())
            for lake_key, source in waiting:
                try:
                    s3.head_object(Bucket=BUCKET, Key=lake_key)
                except s3.exceptions.ClientError:
                    continue
                visible_at[source] = time.perf_counter()
                with lock:
                    del pending[lake_key]
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    interval = 1.0 / args.rate
    began = next_at = time.perf_counter()
    while time.perf_counter() - began < args.seconds:
        start = time.perf_counter()
        source = feed.write_file()
        put_at[source] = start
        day = datetime.now(UTC).date()
        with lock:
            pending[layout.table_key("transactions", day, source)] = source
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    done.set()
    watcher.join(timeout=60)
    runtime.stop_all()

    latencies = [visible_at[k] - put_at[k] for k in put_at if k in visible_at]
    rows = 0
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix="lake/transactions/"
    ):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
            rows += pq.read_metadata(pa.BufferReader(body)).num_rows
    print(
        f"\nsteady feed: {len(put_at)} files at {args.rate}/s for {args.seconds}s, "
        f"{args.transactions} transactions each; moto and the runtime in own processes"
    )
    print(f"  visible: {len(latencies)} of {len(put_at)} files; rows read back "
          f"{rows:,} of {feed.stats.transactions:,} written")  # fmt: skip
    p50, p95, p99 = (percentile(latencies, q) for q in (0.5, 0.95, 0.99))
    print(f"  PUT -> rows visible: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")  # fmt: skip
    verdict = "meets" if p50 < 1 and p99 < 2 else "MISSES"
    print(f"  goal p50 < 1 s and p99 < 2 s: {verdict}")


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
    print(f"  handler (S3 get + transform + 2 Parquet puts + audit, moto): {handler_seconds:.2f}s, "
          f"{args.large / handler_seconds:,.0f} txn/s")  # fmt: skip
    print(f"  supermarket convert (local files, whole process): {convert_seconds:.2f}s, "
          f"{args.large / convert_seconds:,.0f} txn/s")  # fmt: skip
    print(f"  ratio handler / convert: {handler_seconds / convert_seconds:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="files per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--transactions", type=int, default=25, help="per file")
    parser.add_argument("--large", type=int, default=500_000)
    args = parser.parse_args()
    with moto_server() as endpoint:
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
        )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="supermarket-rt-") as work:
            steady_feed(args)
            large_file(args, Path(work))


if __name__ == "__main__":
    main()
