"""What the day checks need of a data file, taken once: its rows per source, its reference codes
counted, and its baskets as 64-bit hashes of their transaction_id with their cents.

A check of the open day ran every 5 minutes and read the whole day each time: 8.3 s and 920 MiB
at half a store's day, growing with it. An Iceberg data file never changes (a commit adds and
removes whole files), so what a check needs of a file can be taken once and kept: a file that
stays in the day (a compacted file, up to a million rows) is tallied by the first check that
reads it, and every later check reads its tally (`dagster/day-checks/<table>/`, Dagster's cache, as
the audit digests are) instead of the file. The small files landed since the last compaction are
read again by each check: their tallies would cost a GET each, as the files do.

A tally is derived, never the truth: a missing or damaged one is taken again from its file, a
file with delete files is never tallied (its rows are the file's less the deletes), and the
tallies of files gone from the day are deleted by the next check that keeps tallies. The hashes
settle the checks only when they pass: any duplicate, mismatch or orphan sends the day's check
to the exact reading of its rows (lake_day), which names the offending ids.
"""

import contextlib
import hashlib
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import layout, money, schema, tables
from lake_contract.arrays import contiguous
from lake_contract.s3 import LakeBucket
from lake_contract.tables import LakeTables
from supermarket_dagster import quality
from supermarket_dagster.hashes import string_hashes
from supermarket_dagster.lake_day import SourceRows

VERSION = 1  # in every tally's key: a tally of another layout is never read as this one
KEPT_ROWS = 100_000  # a file of fewer rows is read again by each check (see module doc)

# The columns a tally reads, and the reference code each table's rows carry.
COLUMNS = {
    "transactions": ("transaction_id", "store_id", "total_amount", "source_key", "ingested_at"),
    "transaction_items": ("transaction_id", "sku_id", "quantity", "unit_price", "source_key",
                          "ingested_at"),
}  # fmt: skip
CODE = {"transactions": "store_id", "transaction_items": "sku_id"}
_FOLDER_DAY = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/$")
ENCODED = ("source_key", "store_id", "sku_id")  # few distinct values: read as Parquet keeps them

SOURCES = pa.schema([("source_key", pa.string()), ("rows", pa.int64()),
                     ("earliest", schema.UTC_MILLIS), ("latest", schema.UTC_MILLIS)])  # fmt: skip
CODES = pa.schema([("code", pa.string()), ("rows", pa.int64())])
# One row per transaction row (lines 1), or per run of an id's item lines (their sum and count).
BASKETS = pa.schema([("id_hash", pa.uint64()), ("cents", pa.int64()), ("lines", pa.int64())])

_log = logging.getLogger(__name__)


def first_kept_day(now: datetime | None = None) -> date:
    """Yesterday: today and yesterday are checked again after each change (the day checks'
    after_new_data), so their large files' tallies are kept; an older day is checked once per
    backfill, from its files, and housekeeping removes its tallies."""
    return (now or datetime.now(UTC)).date() - timedelta(days=1)


@dataclass(frozen=True)
class FileTally:
    """One data file's rows as the day checks use them."""

    rows: int
    sources: pa.Table  # SOURCES
    codes: pa.Table  # CODES
    baskets: pa.Table  # BASKETS

    def encode(self) -> bytes:
        out = io.BytesIO()
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        for part in (self.sources, self.codes, self.baskets):
            with pa.ipc.new_stream(out, part.schema, options=options) as writer:
                writer.write_table(part)
        return out.getvalue()

    @classmethod
    def decode(cls, body: bytes) -> "FileTally":
        source = pa.BufferReader(body)
        parts = []
        for expected in (SOURCES, CODES, BASKETS):
            part = pa.ipc.open_stream(source).read_all()
            if not part.schema.equals(expected):
                raise ValueError(f"a tally part of schema {part.schema}, not {expected}")
            parts.append(part)
        sources, codes, baskets = parts
        return cls(pc.sum(sources["rows"]).as_py() or 0, sources, codes, baskets)


def _source_rows(batches: list[pa.RecordBatch]) -> pa.Table:
    found = SourceRows()
    for batch in batches:
        found.add(batch)
    keys = list(found.counts)
    return pa.table({
        "source_key": pa.array(keys, pa.string()),
        "rows": pa.array([found.counts[k] for k in keys], pa.int64()),
        "earliest": pa.array([found.earliest[k] for k in keys], schema.UTC_MILLIS),
        "latest": pa.array([found.latest[k] for k in keys], schema.UTC_MILLIS),
    }, schema=SOURCES)  # fmt: skip


def _codes(batches: list[pa.RecordBatch], column: str) -> pa.Table:
    counted = []
    for batch in batches:
        values = batch[column]
        if pa.types.is_dictionary(values.type):  # each distinct code counted by its index
            present = np.bincount(values.indices.to_numpy(zero_copy_only=False)[
                np.asarray(values.is_valid())], minlength=len(values.dictionary))  # fmt: skip
            kept = np.flatnonzero(present)
            codes = values.dictionary.take(pa.array(kept)).cast(pa.string())
            counted.append(pa.table({"code": codes, "rows": pa.array(present[kept], pa.int64())}))
        else:
            found = pc.value_counts(values.drop_null())
            counted.append(pa.table({"code": found.field("values").cast(pa.string()),
                                     "rows": found.field("counts").cast(pa.int64())}))  # fmt: skip
        if nulls := values.null_count:
            counted.append(pa.table({"code": pa.array([None], pa.string()),
                                     "rows": pa.array([nulls], pa.int64())}))  # fmt: skip
    if not counted:
        return CODES.empty_table()
    summed = pa.concat_tables(counted).group_by("code").aggregate([("rows", "sum")])
    return pa.table({"code": summed["code"], "rows": summed["rows_sum"]}, schema=CODES)


def _baskets(batches: list[pa.RecordBatch], table: str) -> pa.Table:
    parts = []
    for batch in batches:
        if not batch.num_rows:
            continue
        ids = contiguous(batch["transaction_id"])
        if table == "transactions":
            cents = money.to_cents(batch["total_amount"])
            one_each = np.ones(len(ids), np.int64)
            parts.append(pa.table({"id_hash": string_hashes(ids), "cents": pc.fill_null(cents, 0),
                                   "lines": one_each}, schema=BASKETS))  # fmt: skip
            continue
        # Item lines: summed per run of one id (the transform writes a basket's lines
        # together), so an id is hashed once per run, not once per line.
        cents = pc.multiply_checked(pc.cast(batch["quantity"], pa.int64()),
                                    money.to_cents(batch["unit_price"]))  # fmt: skip
        cents = pc.fill_null(contiguous(cents), 0).to_numpy(zero_copy_only=False)
        runs = quality.basket_runs(ids, cents)
        parts.append(pa.table({"id_hash": string_hashes(runs["transaction_id"]),
                               "cents": runs["cents_sum"], "lines": runs["count_all"]},
                              schema=BASKETS))  # fmt: skip
    return pa.concat_tables(parts) if parts else BASKETS.empty_table()


def tally(table: str, batches: list[pa.RecordBatch]) -> FileTally:
    """What the checks need of one file's rows (its batches as a scan of COLUMNS reads them)."""
    rows = sum(b.num_rows for b in batches)
    return FileTally(rows, _source_rows(batches), _codes(batches, CODE[table]),
                     _baskets(batches, table))  # fmt: skip


def tally_key(table: str, day: date, file_path: str) -> str:
    name = hashlib.sha256(file_path.encode()).hexdigest()[:32]
    return f"{layout.day_checks_prefix(table, day)}v{VERSION}-{name}.arrows"


@dataclass(frozen=True)
class DayTally:
    """One day of one fact table as the checks use it: its files' tallies together."""

    table: str
    schema_problem: str | None  # how the table's schema differs from the contract's, if it does
    files: int
    rows: int
    sources: pa.Table  # SOURCES, one row per source and file it is in
    codes: pa.Table  # CODES, one row per code and file
    baskets: pa.Table  # BASKETS, in the files' order
    kept: int  # files whose tally was read, not the file

    def source_rows(self) -> SourceRows:
        """The day's rows per source, with their earliest and latest ingestion."""
        found = SourceRows()
        found.add_counted(self.sources)
        return found

    def code_rows(self) -> pa.Table:
        """CODES, one row per code of the day."""
        if not self.codes.num_rows:
            return CODES.empty_table()
        summed = self.codes.group_by("code").aggregate([("rows", "sum")])
        return pa.table({"code": summed["code"], "rows": summed["rows_sum"]}, schema=CODES)


def _read_kept(lake: LakeBucket, keys: list[str]) -> dict[str, FileTally]:
    found = {}
    for key, body in zip(keys, lake.read_many(keys), strict=True):
        with contextlib.suppress(OSError, ValueError, pa.ArrowInvalid):  # taken again below
            found[key] = FileTally.decode(body)
    return found


def _keep(lake: LakeBucket, key: str, found: FileTally) -> None:
    """A tally not written costs only the next check's read of its file: logged, not raised."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        lake.write(key, found.encode(), "application/vnd.apache.arrow.stream")
    except (ClientError, BotoCoreError) as exc:
        _log.warning("file tally %s not written: %s", key, exc)


def tally_day(
    lake: LakeTables,
    bucket: LakeBucket,
    table: str,
    day: date,
    keep: bool,
) -> DayTally:
    """The day's tallies: kept ones read, the others taken from their files (and, with keep,
    those of KEPT_ROWS or more kept, and the kept tallies of files gone from the day deleted).
    Raises OSError or ArrowInvalid when a data file cannot be read."""
    from pyiceberg.expressions import EqualTo

    iceberg = lake.current(table)
    scan = iceberg.scan(row_filter=EqualTo(schema.PARTITION.name, day.isoformat()),
                        selected_fields=COLUMNS[table])  # fmt: skip
    planned = list(scan.plan_files())
    present = set(bucket.keys(layout.day_checks_prefix(table, day)))
    key_of = {task.file.file_path: tally_key(table, day, task.file.file_path) for task in planned}
    # A tally is of its file alone: a file with delete files is read, never taken from a tally.
    reusable = [key_of[t.file.file_path] for t in planned if not t.delete_files]
    kept = _read_kept(bucket, [key for key in reusable if key in present])
    unkept = [t for t in planned if key_of[t.file.file_path] not in kept]
    taken: dict[str, FileTally] = {}
    encoded = tuple(c for c in COLUMNS[table] if c in ENCODED)
    for task, batches in tables.files_of(scan, encoded, unkept) if unkept else ():
        key = key_of[task.file.file_path]
        taken[key] = tally(table, batches)
        if keep and not task.delete_files and task.file.record_count >= KEPT_ROWS:
            _keep(bucket, key, taken[key])
    if keep:
        gone = sorted(present - set(key_of.values()))
        if gone:
            with contextlib.suppress(OSError):
                bucket.delete_many(gone)
    parts = [kept.get(key) or taken[key] for key in key_of.values()]
    return DayTally(
        table=table,
        schema_problem=quality.schema_difference(iceberg.schema().as_arrow(), table),
        files=len(planned),
        rows=sum(p.rows for p in parts),
        sources=_concat(SOURCES, (p.sources for p in parts)),
        codes=_concat(CODES, (p.codes for p in parts)),
        baskets=_concat(BASKETS, (p.baskets for p in parts)),
        kept=len(kept),
    )


def _concat(part_schema: pa.Schema, parts: Iterable[pa.Table]) -> pa.Table:
    found = list(parts)
    return pa.concat_tables(found) if found else part_schema.empty_table()


def remove_before(bucket: LakeBucket, day: date) -> int:
    """Deletes what the day checks kept (tallies, and lake_day's reconciled sources) for days
    before `day`: an older day is checked once, from its files; returns how many objects."""
    removed = 0
    for kind in bucket.folders(layout.DAY_CHECKS):
        for folder in bucket.folders(kind):
            found = _FOLDER_DAY.search(folder)
            if found and date.fromisoformat(found.group(1)) < day:
                keys = bucket.keys(folder)
                bucket.delete_many(keys)
                removed += len(keys)
    return removed
