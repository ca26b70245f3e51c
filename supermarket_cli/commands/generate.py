"""`supermarket generate reference|history`: the simulator's stores, SKUs and history logs."""

from datetime import date

import click

from simulator.defaults import DEFAULT_DAYS, DEFAULT_FILE_TRANSACTIONS, DEFAULT_TRANSACTIONS
from supermarket_cli.commands.options import COUNT, DAY, POSITIVE, catalog_options

DEFAULT_DATA = "demo-data"

out_option = click.option("--out", default=DEFAULT_DATA, help="folder or s3://bucket[/prefix]")


@click.group(short_help="generate reference data or history logs")
def generate() -> None:
    """Generate the reference data (stores and SKUs) or history logs, deterministically from
    a seed, into a folder or an S3 location."""


@generate.command(short_help="stores and SKUs as Parquet under lake/")
@out_option
@catalog_options
def reference(out: str, seed: int, stores: int, skus: int) -> None:
    """Write stores and SKUs as Parquet: lake/supermarkets/ and lake/skus/."""
    from lake_contract import layout
    from lake_contract.parquet import parquet_bytes
    from simulator.reference import generate_skus, generate_supermarkets
    from simulator.sink import open_sink

    sink = open_sink(out)
    for name, table in (
        ("supermarkets", generate_supermarkets(stores, seed)),
        ("skus", generate_skus(skus, seed)),
    ):
        key = layout.reference_key(name)
        sink.put(key, parquet_bytes(table))
        print(f"wrote {table.num_rows:,} {name} to {sink.describe(key)}")


@generate.command(short_help="historical NDJSON logs under raw/history/")
@out_option
@catalog_options
@click.option("--transactions", type=COUNT, default=DEFAULT_TRANSACTIONS)
@click.option("--start", type=DAY, help=f"first day (default: {DEFAULT_DAYS} back)")
@click.option("--end", type=DAY, help="last day, inclusive (default: yesterday, UTC)")
@click.option(
    "--file-transactions",
    type=POSITIVE,
    default=DEFAULT_FILE_TRANSACTIONS,
    help="most transactions in one log file",
)
@click.option("--gzip", "compress", is_flag=True, help="write .ndjson.gz")
@click.option("--workers", type=POSITIVE, default=1, help="parallel processes")
def history(
    out: str,
    seed: int,
    stores: int,
    skus: int,
    transactions: int,
    start: date | None,
    end: date | None,
    file_transactions: int,
    compress: bool,
    workers: int,
) -> None:
    """Write historical NDJSON logs under raw/history/dt=YYYY-MM-DD/, one day and one file at
    a time, the same whatever the number of workers."""
    from tqdm import tqdm

    from simulator.history import HistoryOptions, generate_history

    options = HistoryOptions(
        location=out,
        transactions=transactions,
        start=start,
        end=end,
        seed=seed,
        stores=stores,
        skus=skus,
        file_transactions=file_transactions,
        compress=compress,
        workers=workers,
    )
    first, last = options.days()
    files = written = 0
    with tqdm(total=options.transactions, unit=" txn", unit_scale=True, disable=None) as bar:
        for file, size in generate_history(options):
            files, written = files + 1, written + size
            bar.update(file.transactions)
    print(
        f"wrote {options.transactions:,} transactions from {first} to {last} "
        f"in {files:,} files ({written / 1e6:,.1f} MB) under {out}"
    )
