"""Local Lambda runtime under a backlog and a kill: small live files behind large ones, and the
retry delay of a batch whose runtime was SIGKILLed.

    .venv/bin/python benchmarks/backlog.py [--large-mb 100] [--large-files 3] [--rate 10]
                                           [--seconds 15] [--runtime-args "--concurrency 4"]

moto server and `supermarket lambda-runtime` run as their own processes on loopback, as in the
stack (the Glue tables from create_catalog, the commit lock file); the queue is provisioned with
`provision_ingest`'s defaults.

1. Backlog: --large-files logs of --large-mb MB each are PUT to raw/incoming/, then small files
   (25 transactions) at --rate a second for --seconds. A DuckDB reader (the `supermarket query`
   engine) queries the small files' source keys back to back: PUT -> rows returned,
   p50/p95/max, and when the large files landed.
2. Kill: one large file is PUT; once its message is in flight and before it has landed, the
   runtime's process group is SIGKILLed and a new runtime started at once. The retry delay is
   from the kill to the start of the ingestion that landed it (its audit record's started_at).

--runtime-args is appended to the runtime's command line (empty: the runtime's defaults).
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from supermarket_cli.processes import Supervisor, kill_group, wait_until
from supermarket_cli.stack import children
from supermarket_cli.stack.children import moto_server

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "backlog-lake"
BYTES_PER_TRANSACTION = 477  # the generator's average line, to size --large-mb


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def large_log(work: Path, megabytes: int) -> bytes:
    transactions = megabytes * 1_000_000 // BYTES_PER_TRANSACTION
    raw = work / "raw"
    subprocess.run(
        [sys.executable, "-m", "supermarket_cli.main", "generate", "history", "--out", str(raw),
         "--transactions", str(transactions), "--start", "2026-03-01", "--end", "2026-03-01",
         "--file-transactions", str(transactions), "--seed", "11"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    (log,) = raw.rglob("*.ndjson")
    return log.read_bytes()


def start_runtime(queue_url: str, extra: list[str]) -> Supervisor:
    spec = children.lambda_runtime(queue_url, os.environ)
    spec.argv += extra
    supervisor = Supervisor(None)
    supervisor.start(spec)
    return supervisor


def audit_records(s3) -> list[dict]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="audit/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return [json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in keys]


def landed(s3, source_key: str) -> dict | None:
    return next((a for a in audit_records(s3) if a["source_key"] == source_key), None)


def backlog(args: argparse.Namespace, queue_url: str, data: bytes, extra: list[str]) -> None:
    import boto3

    from lake_contract import layout
    from simulator.payment_processor import FeedOptions, PaymentProcessor

    s3 = boto3.client("s3")
    runtime = start_runtime(queue_url, extra)
    feed = PaymentProcessor(
        FeedOptions(
            location=f"s3://{BUCKET}",
            transactions_per_second=25 * args.rate,
            files_per_second=args.rate,
        )
    )
    large_keys = [f"raw/incoming/dt=2026-03-01/large-{n}-{uuid.uuid4().hex[:6]}.ndjson"
                  for n in range(args.large_files)]  # fmt: skip
    began, began_wall = time.perf_counter(), time.time()
    for key in large_keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    puts_done = time.perf_counter() - began

    put_at: dict[str, float] = {}
    visible_at: dict[str, float] = {}
    pending: dict[str, str] = {}
    lock = threading.Lock()
    done = threading.Event()

    def watch() -> None:  # rows visible: returned by the engine `supermarket query` uses
        from supermarket_queries.engine import LocalEngine

        engine = LocalEngine(f"s3://{BUCKET}")
        prefix = f"{layout.RAW_INCOMING}dt={datetime.now(UTC).date()}/{feed.producer_id}-"
        sql = ("SELECT DISTINCT source_key FROM transactions "
               f"WHERE starts_with(source_key, '{prefix}')")  # fmt: skip
        while not done.is_set() or pending:
            keys = engine.query(sql).column("source_key").to_pylist()
            now = time.perf_counter()
            with lock:
                for source in keys:
                    if pending.pop(source, None) is not None:
                        visible_at[source] = now

    watcher = threading.Thread(target=watch)
    watcher.start()
    interval = 1.0 / args.rate
    feed_began = next_at = time.perf_counter()
    while time.perf_counter() - feed_began < args.seconds:
        start = time.perf_counter()
        source = feed.write_file()
        put_at[source] = start
        with lock:
            pending[source] = source
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    done.set()
    watcher.join(timeout=120)
    wait_until(lambda: all(landed(s3, k) for k in large_keys), 300, 0.5, "large files not landed")
    large_done = max(
        datetime.fromisoformat(landed(s3, k)["finished_at"]).timestamp() for k in large_keys
    )
    runtime.stop_all()

    latencies = [visible_at[k] - put_at[k] for k in put_at if k in visible_at]
    size = len(data) / 1e6
    print(f"\nbacklog: {args.large_files} x {size:.0f} MB PUT in {puts_done:.1f}s, then "
          f"{len(put_at)} small files at {args.rate:g}/s for {args.seconds:g}s")  # fmt: skip
    print(f"  small files visible: {len(latencies)} of {len(put_at)}")
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    print(f"  small file PUT -> rows visible: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms")  # fmt: skip
    print(
        f"  last large file landed {large_done - began_wall:.1f}s after the first large PUT began"
    )


def kill_and_retry(queue_url: str, data: bytes, extra: list[str]) -> None:
    import boto3

    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    runtime = start_runtime(queue_url, extra)
    key = f"raw/incoming/dt=2026-03-01/killed-{uuid.uuid4().hex[:6]}.ndjson"
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)

    def in_flight() -> bool:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessagesNotVisible"]) > 0

    wait_until(in_flight, 30, 0.02, "the large file's message never went in flight")
    time.sleep(0.2)  # inside the handler: reading or converting
    child = runtime.children["lambda-runtime"]
    assert child.pid is not None
    if landed(s3, key):
        raise SystemExit("the file landed before the kill: use a larger --large-mb")
    kill_group(child.pid)
    killed_at = time.time()
    runtime.stop_all()
    restarted = start_runtime(queue_url, extra)
    record = wait_until(lambda: landed(s3, key), 120, 0.2, "the killed batch never landed")
    restarted.stop_all()
    started = datetime.fromisoformat(record["started_at"]).timestamp()
    finished = datetime.fromisoformat(record["finished_at"]).timestamp()
    print(f"\nkill: SIGKILL with one {len(data) / 1e6:.0f} MB file in flight, new runtime at once")
    print(f"  retry delay (kill -> its ingestion started again): {started - killed_at:.1f}s")
    print(f"  kill -> rows landed: {finished - killed_at:.1f}s (the ingestion itself "
          f"{finished - started:.1f}s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--large-mb", type=int, default=100)
    parser.add_argument("--large-files", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10.0, help="small files per second")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--runtime-args", default="", help="appended to the runtime's argv")
    args = parser.parse_args()
    extra = shlex.split(args.runtime_args)
    with moto_server() as endpoint:
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint, AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", PYTHONUNBUFFERED="1",
        )  # fmt: skip
        import boto3

        from lake_contract import tables
        from supermarket_cli.local_aws import provision_ingest
        from supermarket_queries.glue import create_catalog

        queue_url = provision_ingest(BUCKET).queue_url
        create_catalog(boto3.client("glue"), BUCKET)
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"]
        )["Attributes"]
        print(f"queue visibility timeout {attributes['VisibilityTimeout']}s; runtime args "
              f"{extra or 'defaults'}")  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="supermarket-backlog-") as work:
            os.environ[tables.COMMIT_LOCK_VARIABLE] = f"{work}/commit.lock"  # as the stack
            data = large_log(Path(work), args.large_mb)
            backlog(args, queue_url, data, extra)
            kill_and_retry(queue_url, data, extra)


if __name__ == "__main__":
    main()
