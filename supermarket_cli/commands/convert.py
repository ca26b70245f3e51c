"""`supermarket convert`: local JSON logs to the lake's Parquet, with the Lambda's transform."""

import time
from pathlib import Path

import click


@click.command(short_help="convert local JSON logs to the lake's Parquet")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="output folder")
def convert(sources: tuple[Path, ...], out: Path) -> None:
    """Convert SOURCES (log files, or folders of *.ndjson, *.jsonl, *.json, optionally .gz)
    to the lake's Parquet under --out, with the Lambda's transform; rejects go to quarantine/."""
    from supermarket_cli.convert import convert as convert_logs
    from supermarket_cli.convert import find_sources

    began = time.perf_counter()
    found = find_sources(list(sources))
    if not found:
        raise FileNotFoundError(f"no log files found in {' '.join(map(str, sources))}")
    s = convert_logs(found, out)
    print(
        f"read {s.records_read:,} records from {s.files:,} files; "
        f"wrote {s.transactions:,} transactions and {s.transaction_items:,} items "
        f"in {s.parquet_files:,} Parquet files; "
        f"quarantined {s.quarantined:,} ({s.files_rejected:,} files rejected whole) "
        f"in {time.perf_counter() - began:.2f}s"
    )
