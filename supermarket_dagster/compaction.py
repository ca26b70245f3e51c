"""Keeping the Iceberg tables fast and small: a day's small data files rewritten as few large
ones in one replace commit, snapshots expired, files no snapshot references removed.

Compaction replaces exact files: the commit deletes the small files it read and adds the files
it wrote, nothing else, so a file the Lambda appends meanwhile stays (snapshot isolation is
enough). Readers see the day before or after the commit, never a mix: nothing is missing or
twice at any moment. The open day is compacted too, on a short schedule, so its query time
stays flat however many batches land in it. Every compaction proves before its commit that the
rows it writes are exactly the rows it read (count, sums, multiset of row keys).
"""

import itertools
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lake_contract import layout, tables
from lake_contract.s3 import LakeBucket
from lake_contract.tables import LakeTables
from supermarket_dagster.fingerprint import Fingerprint, fingerprint

# A file under this many bytes and rows is rewritten by the next compaction of its day; a day's
# compacted files grow up to TARGET_BYTES, and those past either bound stop being rewritten.
# The row bound keeps a run's work bounded: the open day's lines compress to ~4 bytes each, so by
# bytes alone each 5-minute compaction rewrote the whole open day for its first ~8 hours, and a
# run's peak grew to 3.5 GiB by half a day (benchmarks/store_day.py, 2026-12-07).
SMALL_FILE_BYTES = 32 * 1024 * 1024
SMALL_FILE_ROWS = 1_000_000
TARGET_BYTES = 128 * 1024 * 1024
MIN_FILES = 4  # fewer small files than this: not worth a commit
COMPACTION_ATTEMPTS = 3  # plans of one day, when rival compactions keep committing first
# A data file younger than this may belong to a commit still in flight: never an orphan yet.
ORPHAN_MIN_AGE = timedelta(hours=1)

# Time first, so each file and row group covers a narrow time range that min/max statistics
# prune; the key columns make the order total, so the same rows always give the same bytes.
# Lines have no time of sale: they keep the order they landed in, which is what the store
# views prune by (the lines ingested since the store totals' mark).
_SORT = {
    "transactions": ("transaction_datetime", "transaction_id"),
    "transaction_items": ("ingested_at", "transaction_id", "line_number"),
    "sku_daily_sales": ("sku_id",),
    "store_hourly_totals": ("hour", "store_id", "payment_method"),
    "store_sku_totals": ("store_id", "sku_id"),
}


@dataclass(frozen=True)
class DayCompaction:
    table: str
    day: date
    files_before: int  # the day's data files when planned
    files_rewritten: int
    files_written: int
    rows: int
    bytes_rewritten: int
    bytes_written: int
    seconds: float
    fingerprint: Fingerprint  # the rows rewritten, the same before and after
    snapshot_id: int | None = None  # None: nothing to do

    @property
    def noop(self) -> bool:
        return self.snapshot_id is None

    def metadata(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "dt": self.day.isoformat(),
            "noop": self.noop,
            "files_before": self.files_before,
            "files_rewritten": self.files_rewritten,
            "files_written": self.files_written,
            "rows": self.rows,
            "bytes_rewritten": self.bytes_rewritten,
            "bytes_written": self.bytes_written,
            "duration_s": round(self.seconds, 3),
            "snapshot_id": self.snapshot_id,
            "fingerprint": self.fingerprint.to_json(),
        }


def last_landed(lake: LakeTables, names: Iterable[str], day: date) -> datetime | None:
    """When a commit last added files to the day in any of the tables (None: the day has none),
    from the partition summaries of the manifests that hold the day."""
    latest = None
    for name in names:
        iceberg = lake.current(name)
        if iceberg.current_snapshot() is None:
            continue
        partitions = iceberg.inspect.partitions(row_filter=tables.day_filter(name, day))
        updated = partitions["last_updated_at"]
        if len(updated) and (at := pc.max(updated).as_py()) is not None:
            latest = max(latest, at) if latest else at
    return latest.replace(tzinfo=UTC) if latest else None


def compact_day(
    lake: LakeTables,
    table: str,
    day: date,
    small_bytes: int = SMALL_FILE_BYTES,
    min_files: int = MIN_FILES,
    small_rows: int = SMALL_FILE_ROWS,
) -> DayCompaction:
    """Rewrites the day's small files of `table` as files of up to TARGET_BYTES, in one commit.
    Another compaction of the day committed between this one's plan and its commit (the
    schedule's run and a manual one, say): Iceberg refuses the commit, since the files it would
    delete are gone, and the day is planned again from the table as it now is."""
    from pyiceberg.exceptions import ValidationException

    for attempt in range(1, COMPACTION_ATTEMPTS + 1):
        try:
            return _compact_day_once(lake, table, day, small_bytes, min_files, small_rows)
        except ValidationException as exc:
            if "Missing required files to delete" not in str(exc):
                raise
            if attempt == COMPACTION_ATTEMPTS:  # the files it wrote are orphans for the sweep
                raise RuntimeError(
                    f"{table} dt={day}: another compaction replaced the planned files before "
                    f"each of {attempt} commits; nothing was changed by this one"
                ) from None
    raise AssertionError("unreachable")


def _compact_day_once(
    lake: LakeTables, table: str, day: date, small_bytes: int, min_files: int, small_rows: int
) -> DayCompaction:
    from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files

    clock = time.perf_counter()
    iceberg = lake.current(table)
    where = tables.day_filter(table, day)
    planned = list(iceberg.scan(row_filter=where).plan_files())
    small = [
        task
        for task in planned
        if task.file.file_size_in_bytes < small_bytes and task.file.record_count < small_rows
    ]
    if len(small) < min_files:
        return DayCompaction(table, day, len(planned), 0, 0, 0, 0, 0,
                             time.perf_counter() - clock, Fingerprint())  # fmt: skip
    # Every row of these files is the day's (a file holds one partition): read them whole.
    rows = ArrowScan(iceberg.metadata, iceberg.io, iceberg.schema(), row_filter=where).to_table(
        small
    )
    read = fingerprint(table, rows)
    ordered = rows.take(pc.sort_indices(rows, sort_keys=[(k, "ascending") for k in _SORT[table]]))
    commit_uuid = uuid.uuid4()
    written = list(
        _dataframe_to_data_files(
            iceberg.metadata, ordered, iceberg.io, commit_uuid, itertools.count()
        )
    )
    kept = fingerprint(table, pa.concat_tables(_read_files(iceberg, written)))
    if kept != read:  # the proof: refuse to commit a rewrite that changed the rows
        raise AssertionError(f"{table} dt={day}: wrote {kept.to_json()}, read {read.to_json()}")
    with tables.commit_lock():
        iceberg = lake.current(table)
        with (
            iceberg.transaction() as replace,
            replace.update_snapshot().overwrite(commit_uuid=commit_uuid) as overwrite,
        ):
            overwrite.delete_by_predicate(where)  # selects the day's manifests; the files decide
            for task in small:
                overwrite.delete_data_file(task.file)
            for data_file in written:
                overwrite.append_data_file(data_file)
        snapshot = iceberg.current_snapshot().snapshot_id
    return DayCompaction(
        table, day, len(planned), len(small), len(written), rows.num_rows,
        sum(task.file.file_size_in_bytes for task in small),
        sum(f.file_size_in_bytes for f in written),
        time.perf_counter() - clock, read, snapshot,
    )  # fmt: skip


def _read_files(iceberg: Any, data_files: list[Any]) -> list[pa.Table]:
    import pyarrow.parquet as pq

    return [pq.read_table(iceberg.io.new_input(f.file_path).open()) for f in data_files]


def expire_snapshots(lake: LakeTables, table: str, keep: int = tables.SNAPSHOTS_KEPT) -> int:
    """Keeps the newest `keep` snapshots of `table`; returns how many were expired."""
    with tables.commit_lock():
        return tables.expire_old_snapshots(lake.current(table), keep)


def referenced_files(iceberg: Any) -> set[str]:
    """Every file a snapshot still kept reaches: metadata, manifest lists, manifests, data."""
    found = {iceberg.metadata_location}
    found |= {entry.metadata_file for entry in iceberg.metadata.metadata_log}
    manifests = {}
    for snapshot in iceberg.metadata.snapshots:
        found.add(snapshot.manifest_list)
        manifests |= {m.manifest_path: m for m in snapshot.manifests(iceberg.io)}
    for path, manifest in manifests.items():  # shared by many snapshots: each read once
        found.add(path)
        found |= {
            entry.data_file.file_path
            for entry in manifest.fetch_manifest_entry(iceberg.io, discard_deleted=True)
        }
    return found


def added_rows(iceberg: Any, snapshot_id: int) -> pa.Table | None:
    """The rows of the data files a snapshot added; None once it has been expired."""
    snapshot = iceberg.snapshot_by_id(snapshot_id)
    if snapshot is None:
        return None
    added = [
        entry.data_file
        for manifest in snapshot.manifests(iceberg.io)
        if manifest.added_snapshot_id == snapshot_id
        for entry in manifest.fetch_manifest_entry(iceberg.io, discard_deleted=True)
        if entry.snapshot_id == snapshot_id
    ]
    parts = _read_files(iceberg, added)
    return (
        pa.concat_tables(parts) if parts else tables.arrow_schema(iceberg.name()[-1]).empty_table()
    )


@dataclass(frozen=True)
class OrphanSweep:
    table: str
    objects: int  # under the table's prefix
    removed: int
    bytes_removed: int


def remove_orphans(
    lake: LakeTables, objects: LakeBucket, table: str, now: datetime | None = None
) -> OrphanSweep:
    """Deletes the table's objects that no kept snapshot references and that are older than
    ORPHAN_MIN_AGE (files of expired snapshots and replaced metadata; an aborted write)."""
    iceberg = lake.current(table)
    referenced = referenced_files(iceberg)
    horizon = (now or datetime.now(UTC)) - ORPHAN_MIN_AGE
    listed = objects.listing(layout.table_prefix(table))
    orphans = [
        o for o in listed if objects.url(o.key) not in referenced and o.last_modified < horizon
    ]
    objects.delete_many([o.key for o in orphans])
    return OrphanSweep(table, len(listed), len(orphans), sum(o.size for o in orphans))
