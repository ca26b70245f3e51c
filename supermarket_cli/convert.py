"""`supermarket convert`: local JSON logs -> the lake's Parquet layout in a local folder.

Same transform and same keys as the Lambda, so a rerun replaces its own files.
"""

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from lake_contract import layout
from lake_contract.parquet import write_parquet
from lake_contract.quarantine import quarantine_ndjson
from lambda_ingest.day_files import split_by_day
from lambda_ingest.transform import transform

LOG_SUFFIXES = (".ndjson", ".jsonl", ".json", ".ndjson.gz", ".jsonl.gz", ".json.gz")
MAX_PENDING_WRITES = 8  # bounds memory: converted tables waiting for a writer


@dataclass
class ConvertSummary:
    files: int = 0
    records_read: int = 0
    transactions: int = 0
    transaction_items: int = 0
    quarantined: int = 0  # rejected records, plus one per file rejected whole
    files_rejected: int = 0
    parquet_files: int = 0


def find_sources(paths: list[Path]) -> list[Path]:
    """Files as given, and log files found under folders, in a stable order."""
    sources: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.name.endswith(LOG_SUFFIXES)
            )
            sources += found
        elif path.is_file():
            sources.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return sources


def _write_atomically(content: bytes | pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    if isinstance(content, bytes):
        temporary.write_bytes(content)
    else:
        write_parquet(content, str(temporary))
    os.replace(temporary, path)  # readers see the old file or the new one, never half of one


def convert(sources: list[Path], out: Path, ingested_at: datetime | None = None) -> ConvertSummary:
    """Converts each source into per-day Parquet files under out/lake/ and rejects under out/."""
    summary = ConvertSummary()
    ingested = ingested_at or datetime.now(UTC)
    pending: deque[Future[None]] = deque()
    with ThreadPoolExecutor(max_workers=2) as writers:  # pyarrow writes release the GIL

        def submit(content: bytes | pa.Table, key: str) -> None:
            while len(pending) >= MAX_PENDING_WRITES:
                pending.popleft().result()
            pending.append(writers.submit(_write_atomically, content, out / key))

        for path in sources:
            source_key = path.resolve().as_posix()
            # Memory-mapped: the file is parsed in place, never copied into Python.
            with pa.memory_map(str(path)) as mapped:
                result = transform(mapped.read_buffer(), source_key, ingested)
            for day in split_by_day(result):
                for table, rows in day.tables().items():
                    submit(rows, layout.table_key(table, day.day, source_key))
                    summary.parquet_files += 1
            quarantine_key = layout.quarantine_key(source_key)
            if result.rejects:
                submit(quarantine_ndjson(source_key, result.rejects, ingested), quarantine_key)
            else:
                (out / quarantine_key).unlink(missing_ok=True)  # a fixed file's rerun clears it
            summary.files += 1
            summary.records_read += result.records_read
            summary.transactions += result.transactions.num_rows
            summary.transaction_items += result.transaction_items.num_rows
            summary.quarantined += len(result.rejects)
            summary.files_rejected += result.file_rejected
        while pending:
            pending.popleft().result()
    return summary
