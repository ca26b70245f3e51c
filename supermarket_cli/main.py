"""The `supermarket` command. Subcommands import their modules lazily, so `convert` starts fast."""

import argparse
import logging
import signal
import sys
import threading
import time
from datetime import date
from pathlib import Path

DEFAULT_DATA = "demo-data"
DEFAULT_FEED = "s3://supermarket-lake"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _count(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-01-31, got {text!r}") from None


def _add_catalog_options(parser: argparse.ArgumentParser) -> None:
    """The stores and SKUs to draw from: the same flags give the same reference data."""
    from simulator.reference import DEFAULT_SKUS, DEFAULT_STORES

    parser.add_argument("--seed", type=int, default=0, help="same seed, same data (default 0)")
    parser.add_argument("--stores", type=_positive, default=DEFAULT_STORES)
    parser.add_argument("--skus", type=_positive, default=DEFAULT_SKUS)


def _add_reference_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=DEFAULT_DATA, help="folder or s3://bucket[/prefix]")
    _add_catalog_options(parser)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supermarket", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="generate reference data or history logs")
    kinds = generate.add_subparsers(dest="kind", required=True)
    reference = kinds.add_parser("reference", help="stores and SKUs as Parquet under lake/")
    _add_reference_options(reference)
    history = kinds.add_parser("history", help="historical NDJSON logs under raw/history/")
    _add_reference_options(history)
    from simulator.history import DEFAULT_DAYS, DEFAULT_FILE_TRANSACTIONS, DEFAULT_TRANSACTIONS

    history.add_argument("--transactions", type=_count, default=DEFAULT_TRANSACTIONS)
    history.add_argument("--start", type=_day, help=f"first day (default: {DEFAULT_DAYS} back)")
    history.add_argument("--end", type=_day, help="last day, inclusive (default: yesterday, UTC)")
    history.add_argument(
        "--file-transactions",
        type=_positive,
        default=DEFAULT_FILE_TRANSACTIONS,
        help="most transactions in one log file",
    )
    history.add_argument("--gzip", action="store_true", help="write .ndjson.gz")
    history.add_argument("--workers", type=_positive, default=1, help="parallel processes")

    runtime = commands.add_parser(
        "lambda-runtime", help="poll the ingest queue and run the Lambda handler locally"
    )
    runtime.add_argument("--queue", default=None, help="queue name (default supermarket-ingest)")
    runtime.add_argument("--queue-url", default=None, help="queue URL (overrides --queue)")
    runtime.add_argument("--batch-size", type=_positive, default=10, help="1..10 (default 10)")
    runtime.add_argument("--wait", type=int, default=1, help="long-poll seconds (default 1)")

    feed = commands.add_parser(
        "payment-processor", help="write live NDJSON logs to raw/incoming/ until stopped"
    )
    feed.add_argument("--out", default=DEFAULT_FEED, help=f"default {DEFAULT_FEED}")
    feed.add_argument("--tps", type=float, default=50.0, help="transactions per second")
    feed.add_argument("--fps", type=float, default=2.0, help="files per second")
    _add_catalog_options(feed)
    feed.add_argument("--producer-id", help="names this producer (default: random)")
    feed.add_argument("--duration", type=float, help="stop after this many seconds")

    query = commands.add_parser("query", help="run SQL or a curated view against the lake")
    query.add_argument("sql", nargs="?", help="a SQL query (or use --view)")
    query.add_argument("--view", help="a curated view by name")
    query.add_argument("--where", help="filter for --view, e.g. \"dt = DATE '2026-03-01'\"")
    query.add_argument(
        "--lake", default=None, help="s3://bucket or a folder (default: the running stack's)"
    )
    query.add_argument("--engine", choices=["local", "athena"], default="local")
    query.add_argument("--csv", type=Path, help="write the result as CSV")
    query.add_argument("--parquet", type=Path, help="write the result as Parquet")
    query.add_argument("--limit", type=_positive, default=50, help="rows to print (default 50)")

    _add_stack_commands(commands)

    board = commands.add_parser("dashboard", help="serve the dashboard on one lake until stopped")
    board.add_argument("--lake", help="s3://bucket or a folder (default: the running stack's)")
    board.add_argument("--host", default="127.0.0.1")
    board.add_argument("--port", type=int, default=8050)
    board.add_argument("--refresh-seconds", type=float, default=3.0)

    convert = commands.add_parser("convert", help="convert local JSON logs to the lake's Parquet")
    convert.add_argument("sources", nargs="+", type=Path, help="log files or folders of them")
    convert.add_argument("--out", type=Path, required=True, help="output folder")
    return parser


def _add_stack_commands(commands: argparse._SubParsersAction) -> None:
    up = commands.add_parser(
        "up",
        help="start the whole local stack and supervise it until Ctrl-C",
        description="Settings come from environment variables (see README); flags override them.",
    )
    up.add_argument("--reset", action="store_true", help="forget the kept lake and Dagster state")
    up.add_argument("--detach", action="store_true", help="run in the background")
    up.add_argument(
        "--no-load",
        dest="load",
        action="store_false",
        help="skip loading reference data and history",
    )
    up.add_argument(
        "--aws",
        action="store_true",
        help="no moto: provision and run against the AWS account boto3 finds",
    )
    up.add_argument("--tps", type=float, help="live transactions per second (FEED_TPS)")
    up.add_argument("--fps", type=float, help="live files per second (FEED_FPS)")
    up.add_argument("--history-days", type=_count, help="days of history (HISTORY_DAYS)")
    up.add_argument(
        "--history-per-day",
        type=_count,
        help="historical transactions a day (HISTORY_TRANSACTIONS_PER_DAY)",
    )
    up.add_argument("--stores", type=_positive, help="stores (SUPERMARKET_STORES)")
    up.add_argument("--skus", type=_positive, help="SKUs (SUPERMARKET_SKUS)")
    commands.add_parser("status", help="show a stack started with `up --detach`")
    commands.add_parser("down", help="stop a stack started with `up --detach`")


def _stack_config(args: argparse.Namespace):  # noqa: ANN202 (keeps the stack's import lazy)
    from supermarket_cli.stack.config import from_environment

    config = from_environment()
    config = config.with_overrides(
        **{name: getattr(args, name, None)
           for name in ("tps", "fps", "history_days", "history_per_day", "stores", "skus")}
    )  # fmt: skip
    return config.with_overrides(state_dir=config.state_dir.resolve())


def _up(args: argparse.Namespace) -> int:
    from supermarket_cli.stack import up

    config = _stack_config(args)
    if args.detach:
        argv = [a for a in sys.argv[2:] if a != "--detach"]
        return up.detach(config, argv)
    return up.up(config, reset=args.reset, load=args.load, use_aws=args.aws)


def _status(args: argparse.Namespace) -> int:
    from supermarket_cli.stack import up

    return up.status(_stack_config(args))


def _down(args: argparse.Namespace) -> int:
    from supermarket_cli.stack import up

    return up.down(_stack_config(args))


def _dashboard(args: argparse.Namespace) -> int:
    from supermarket_cli.dashboard import run

    return run(args.lake, args.host, args.port, args.refresh_seconds)


def _generate_reference(args: argparse.Namespace) -> None:
    from lake_contract import layout
    from lake_contract.parquet import parquet_bytes
    from simulator.reference import generate_skus, generate_supermarkets
    from simulator.sink import open_sink

    sink = open_sink(args.out)
    for name, table in (
        ("supermarkets", generate_supermarkets(args.stores, args.seed)),
        ("skus", generate_skus(args.skus, args.seed)),
    ):
        key = layout.reference_key(name)
        sink.put(key, parquet_bytes(table))
        print(f"wrote {table.num_rows:,} {name} to {sink.describe(key)}")


def _generate_history(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from simulator.history import HistoryOptions, generate_history

    options = HistoryOptions(
        location=args.out,
        transactions=args.transactions,
        start=args.start,
        end=args.end,
        seed=args.seed,
        stores=args.stores,
        skus=args.skus,
        file_transactions=args.file_transactions,
        compress=args.gzip,
        workers=args.workers,
    )
    start, end = options.days()
    files = written = 0
    with tqdm(total=options.transactions, unit=" txn", unit_scale=True, disable=None) as bar:
        for file, size in generate_history(options):
            files, written = files + 1, written + size
            bar.update(file.transactions)
    print(
        f"wrote {options.transactions:,} transactions from {start} to {end} "
        f"in {files:,} files ({written / 1e6:,.1f} MB) under {args.out}"
    )


def _convert(args: argparse.Namespace) -> None:
    from supermarket_cli.convert import convert, find_sources

    began = time.perf_counter()
    sources = find_sources(args.sources)
    if not sources:
        raise FileNotFoundError(f"no log files found in {' '.join(map(str, args.sources))}")
    s = convert(sources, args.out)
    print(
        f"read {s.records_read:,} records from {s.files:,} files; "
        f"wrote {s.transactions:,} transactions and {s.transaction_items:,} items "
        f"in {s.parquet_files:,} Parquet files; "
        f"quarantined {s.quarantined:,} ({s.files_rejected:,} files rejected whole) "
        f"in {time.perf_counter() - began:.2f}s"
    )


def _stop_on_signals() -> threading.Event:
    """SIGINT and SIGTERM ask the loop to stop after the work in hand, never in the middle."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _lambda_runtime(args: argparse.Namespace) -> None:
    import boto3

    from supermarket_cli.lambda_runtime import LocalLambdaRuntime
    from supermarket_cli.local_aws import DEFAULT_QUEUE

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    queue_url = (
        args.queue_url
        or boto3.client("sqs").get_queue_url(QueueName=args.queue or DEFAULT_QUEUE)["QueueUrl"]
    )
    runtime = LocalLambdaRuntime(queue_url, args.batch_size, args.wait)
    stop = _stop_on_signals()
    print(f"lambda-runtime polling {queue_url}", flush=True)
    stats = runtime.run(stop)
    print(
        f"lambda-runtime stopped: {stats.batches} batches, {stats.messages} messages, "
        f"{stats.failed} failed",
        flush=True,
    )


def _payment_processor(args: argparse.Namespace) -> None:
    from simulator.payment_processor import FeedOptions, PaymentProcessor

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    processor = PaymentProcessor(
        FeedOptions(
            location=args.out,
            transactions_per_second=args.tps,
            files_per_second=args.fps,
            seed=args.seed,
            stores=args.stores,
            skus=args.skus,
            producer_id=args.producer_id,
        )
    )
    stop = _stop_on_signals()
    if args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True  # an earlier Ctrl-C must not wait for it
        timer.start()
    print(f"payment-processor {processor.producer_id} writing to {args.out}", flush=True)
    stats = processor.run(stop)
    print(
        f"payment-processor {processor.producer_id} stopped: "
        f"{stats.files} files, {stats.transactions} transactions",
        flush=True,
    )


def _query(args: argparse.Namespace) -> None:
    from supermarket_queries.engine import QueryError
    from supermarket_queries.table_text import table_text
    from supermarket_queries.views import UnknownView

    if bool(args.sql) == bool(args.view):
        raise ValueError("give either a SQL query or --view NAME")
    if args.engine == "athena":
        from supermarket_queries.athena import AthenaEngine

        engine = AthenaEngine()
    else:
        from supermarket_cli.stack.discovery import choose_lake
        from supermarket_queries.engine import LocalEngine

        choice = choose_lake(args.lake)
        print(f"supermarket query: {choice.explanation}", file=sys.stderr)
        engine = LocalEngine(choice.lake, choice.endpoint)
    try:
        result = engine.view(args.view, args.where) if args.view else engine.query(args.sql)
    except (QueryError, UnknownView) as exc:
        raise ValueError(str(exc)) from None
    if args.csv:
        import pyarrow.csv

        pyarrow.csv.write_csv(result, args.csv)
    if args.parquet:
        import pyarrow.parquet

        pyarrow.parquet.write_table(result, args.parquet)
    if not (args.csv or args.parquet):
        print(table_text(result, args.limit))
    else:
        print(f"wrote {result.num_rows:,} rows")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {
        ("generate", "reference"): _generate_reference,
        ("generate", "history"): _generate_history,
        ("convert", None): _convert,
        ("lambda-runtime", None): _lambda_runtime,
        ("payment-processor", None): _payment_processor,
        ("query", None): _query,
        ("up", None): _up,
        ("status", None): _status,
        ("down", None): _down,
        ("dashboard", None): _dashboard,
    }[(args.command, getattr(args, "kind", None))]
    try:
        code = handler(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"supermarket {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # AWS said no (missing bucket, denied, unreachable endpoint): one line, not a traceback.
        # Matched by module so that commands which never touch AWS never import botocore.
        if type(exc).__module__.startswith("botocore"):
            print(f"supermarket {args.command}: AWS error: {exc}", file=sys.stderr)
            return 1
        raise
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
