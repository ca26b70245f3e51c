"""`supermarket lambda-runtime` and `payment-processor`: the real-time path's two long-running
processes. Both stop cleanly on SIGINT or SIGTERM, after the work in hand."""

import logging
import threading

import click

from simulator.defaults import DEFAULT_FILES_PER_SECOND, DEFAULT_TRANSACTIONS_PER_SECOND
from supermarket_cli.commands.options import POSITIVE, catalog_options, stop_on_signals
from supermarket_cli.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BUCKET,
    DEFAULT_CONCURRENCY,
    DEFAULT_QUEUE,
    DEFAULT_WAIT_SECONDS,
)

DEFAULT_FEED = f"s3://{DEFAULT_BUCKET}"


@click.command(short_help="poll the ingest queue and run the Lambda handler locally")
@click.option("--queue", default=None, help=f"queue name (default {DEFAULT_QUEUE})")
@click.option("--queue-url", default=None, help="queue URL (overrides --queue)")
@click.option(
    "--batch-size",
    type=POSITIVE,
    default=DEFAULT_BATCH_SIZE,
    help=f"1..10 (default {DEFAULT_BATCH_SIZE})",
)
@click.option(
    "--wait",
    type=int,
    default=DEFAULT_WAIT_SECONDS,
    help=f"long-poll seconds (default {DEFAULT_WAIT_SECONDS})",
)
@click.option(
    "--concurrency",
    type=POSITIVE,
    default=DEFAULT_CONCURRENCY,
    help=f"batches in flight at once (default {DEFAULT_CONCURRENCY})",
)
def lambda_runtime(
    queue: str | None, queue_url: str | None, batch_size: int, wait: int, concurrency: int
) -> None:
    """Poll the ingest queue and call the Lambda handler with SQS batch events, as Lambda's
    event source mapping does, with several batches in flight, until stopped."""
    import boto3

    from lambda_ingest.handler import warm_up
    from supermarket_cli.lambda_runtime import LocalLambdaRuntime

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    queue_url = (
        queue_url or boto3.client("sqs").get_queue_url(QueueName=queue or DEFAULT_QUEUE)["QueueUrl"]
    )
    runtime = LocalLambdaRuntime(queue_url, batch_size, wait, concurrency=concurrency)
    stop = stop_on_signals()
    try:  # so that the first file after a quiet start lands as fast as the next ones
        warm_up()
    except Exception as exc:  # e.g. tables not made yet: the first batch pays for it instead
        print(f"lambda-runtime warm-up skipped: {exc!r}"[:300], flush=True)
    print(
        f"lambda-runtime polling {queue_url} with {concurrency} pollers, visibility "
        f"{runtime.visibility_timeout}s kept up while a batch runs",
        flush=True,
    )
    stats = runtime.run(stop)
    print(
        f"lambda-runtime stopped: {stats.batches} batches, {stats.messages} messages, "
        f"{stats.failed} failed",
        flush=True,
    )


@click.command(short_help="write live NDJSON logs to raw/incoming/ until stopped")
@click.option("--out", default=DEFAULT_FEED, help=f"default {DEFAULT_FEED}")
@click.option(
    "--tps", type=float, default=DEFAULT_TRANSACTIONS_PER_SECOND, help="transactions per second"
)
@click.option("--fps", type=float, default=DEFAULT_FILES_PER_SECOND, help="files per second")
@catalog_options
@click.option("--producer-id", help="names this producer (default: random)")
@click.option("--duration", type=float, help="stop after this many seconds")
def payment_processor(
    out: str,
    tps: float,
    fps: float,
    seed: int,
    stores: int,
    skus: int,
    producer_id: str | None,
    duration: float | None,
) -> None:
    """Write small live NDJSON logs to raw/incoming/dt=YYYY-MM-DD/ on a fixed schedule until
    stopped; prices come from the same seeded SKUs as the lake."""
    from simulator.payment_processor import FeedOptions, PaymentProcessor

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    processor = PaymentProcessor(
        FeedOptions(
            location=out,
            transactions_per_second=tps,
            files_per_second=fps,
            seed=seed,
            stores=stores,
            skus=skus,
            producer_id=producer_id,
        )
    )
    stop = stop_on_signals()
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True  # an earlier Ctrl-C must not wait for it
        timer.start()
    print(f"payment-processor {processor.producer_id} writing to {out}", flush=True)
    stats = processor.run(stop)
    print(
        f"payment-processor {processor.producer_id} stopped: "
        f"{stats.files} files, {stats.transactions} transactions",
        flush=True,
    )


@click.command(short_help="send the dead-letter queue's S3 notifications back to the ingest queue")
@click.option("--queue", default=None, help=f"queue name (default {DEFAULT_QUEUE})")
@click.option("--queue-url", default=None, help="queue URL (overrides --queue)")
@click.option("--dead-letter-url", default=None, help="default: from the queue's redrive policy")
@click.option("--limit", type=POSITIVE, default=None, help="replay at most this many messages")
def replay_dlq(
    queue: str | None, queue_url: str | None, dead_letter_url: str | None, limit: int | None
) -> None:
    """Once the cause of the failures is fixed: move every S3 notification from the dead-letter
    queue back to the ingest queue, to be ingested again. Idempotent: a source already in the
    lake replaces itself. Messages that are not S3 notifications stay in the dead-letter queue."""
    import boto3

    from supermarket_cli.dead_letters import replay_dead_letters

    queue_url = (
        queue_url or boto3.client("sqs").get_queue_url(QueueName=queue or DEFAULT_QUEUE)["QueueUrl"]
    )
    done = replay_dead_letters(queue_url, dead_letter_url, limit)
    print(
        f"replay-dlq: {done.replayed} messages replayed ({len(done.sources)} sources), "
        f"{done.kept} not S3 notifications kept in the dead-letter queue",
        flush=True,
    )
