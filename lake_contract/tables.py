"""The lake's partitioned tables as Apache Iceberg v2 tables in a Glue catalog, from schema.py.

`transactions`, `transaction_items` and the rollups (`sku_daily_sales` and the store totals)
are Iceberg tables (Parquet underneath): readers plan from the manifest instead of listing S3,
a commit makes a whole batch visible at once, and compaction is one replace commit. The
reference tables stay one plain Parquet object each: a single PUT already replaces them
atomically, and they never grow.

Every partitioned table carries `dt`, the UTC day of its transaction (the column every view
and filter uses). `transactions` is partitioned by day(transaction_datetime), hidden, so a
filter on the time prunes too; the others are partitioned by `dt`, the same days. Iceberg
keeps timestamps in microseconds: the values are those of the lake's millisecond timestamps
(the transform truncates), stored in Iceberg's unit.

Locally the catalog is moto's Glue, which does not enforce UpdateTable's VersionId, so two
committers could overwrite each other's commit unseen. Every committer therefore holds
`commit_lock()` (a file lock named by LAKE_COMMIT_LOCK, set by the local stack) around its
commit; in AWS the variable is unset and Glue's optimistic locking makes a conflicting commit
fail, which the committer retries from its source lookup (lambda_ingest/committer.py).
"""

import contextlib
import fcntl
import functools
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from lake_contract import layout, schema

ICEBERG_TABLES = (
    "transactions",
    "transaction_items",
    "sku_daily_sales",
    "store_hourly_totals",
    "store_sku_totals",
)
DEFAULT_DATABASE = "supermarket_lake"
ICEBERG_TIMESTAMP = pa.timestamp("us", tz="UTC")
COMMIT_LOCK_VARIABLE = "LAKE_COMMIT_LOCK"
DATABASE_VARIABLE = "GLUE_DATABASE"
# The newest snapshots every commit keeps (older ones are expired by the committer itself):
# a commit copies the whole metadata, so its cost grows with what is kept (72 ms with 20 kept
# against 244 ms with 100, measured), while time travel needs only the last minutes.
SNAPSHOTS_KEPT = 20

TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "write.parquet.compression-level": "1",
    # Source keys share a long prefix: bounds truncated to 16 characters would prune nothing.
    "write.metadata.metrics.column.source_key": "full",
    # Appends merge into few manifests (from 8 on, not the default 100), so planning reads a
    # handful, not one per commit.
    "commit.manifest-merge.enabled": "true",
    "commit.manifest.min-count-to-merge": "8",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "10",
    # Compaction of the open day must not fail because the Lambda appended meanwhile: it
    # replaces exact files, so snapshot isolation is enough (serializable would refuse).
    "write.update.isolation-level": "snapshot",
    "write.delete.isolation-level": "snapshot",
    "commit.retry.num-retries": "10",
    "history.expire.min-snapshots-to-keep": str(SNAPSHOTS_KEPT),
}


def arrow_schema(table: str) -> pa.Schema:
    """The Iceberg table's rows as Arrow: schema.py's columns, then dt; timestamps in us."""
    fields = [
        f.with_type(ICEBERG_TIMESTAMP) if pa.types.is_timestamp(f.type) else f
        for f in schema.TABLES[table]
    ]
    day = schema.PARTITION.with_metadata({"description": "UTC date of the transaction"})
    return pa.schema([*fields, day])


def iceberg_schema(table: str) -> Any:
    """The Iceberg schema, with real field ids (pyiceberg's conversion leaves them at -1, and a
    partition spec built on those binds to the wrong column) and the descriptions as docs."""
    from pyiceberg.catalog import Catalog
    from pyiceberg.schema import assign_fresh_schema_ids

    documented = pa.schema(
        [f.with_metadata({"doc": f.metadata[b"description"]}) for f in arrow_schema(table)]
    )
    return assign_fresh_schema_ids(Catalog._convert_schema_if_needed(documented))


def partition_spec(table: str, iceberg: Any) -> Any:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import DayTransform, IdentityTransform

    if table == "transactions":
        source, transform, name = "transaction_datetime", DayTransform(), "transaction_day"
    else:
        source, transform, name = schema.PARTITION.name, IdentityTransform(), "dt"
    field_id = iceberg.find_field(source).field_id
    return PartitionSpec(
        PartitionField(source_id=field_id, field_id=1000, transform=transform, name=name)
    )


def catalog_properties(endpoint: str | None = None) -> dict[str, str]:
    """pyiceberg's Glue catalog, with data and metadata through pyarrow's S3 (credentials from
    the default chain). AWS_ENDPOINT_URL, when set, points both at the local stack;
    AWS_ENDPOINT_URL_S3 points S3 alone elsewhere, as it does for boto3 (a soak's fault proxy)."""
    s3_endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or None
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    properties = {
        "py-io-impl": "lake_contract.fileio.LakeFileIO",
        "glue.region": region,
        "s3.region": region,
    }
    if endpoint:
        properties["glue.endpoint"] = endpoint
    if s3_endpoint or endpoint:
        properties["s3.endpoint"] = s3_endpoint or endpoint
    return properties


METADATA_CACHED = 64  # parsed metadata files per catalog: a few per table is what is used


_retired = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retired-metadata")


def _delete_retired(delete: Any, *args: Any) -> None:
    try:
        delete(*args)
    except Exception as exc:  # housekeeping's orphan sweep removes it later
        logging.getLogger(__name__).warning("retired metadata not deleted: %r", exc)


@functools.cache
def _caching_glue_catalog() -> type:
    """pyiceberg's Glue catalog, keeping the metadata files it has parsed or written by their
    location. A metadata file never changes once written (each commit writes a new one and
    names it in Glue), so a refresh or a commit whose GetTable names a file already seen skips
    reading and parsing it again: ~10 ms a read, twice a commit, each table (measured)."""
    from pyiceberg.catalog.glue import GlueCatalog
    from pyiceberg.table import Table

    class CachingGlueCatalog(GlueCatalog):
        def __init__(self, name: str, **properties: str) -> None:
            super().__init__(name, **properties)
            self._metadata: OrderedDict[str, Any] = OrderedDict()
            self._lock = threading.Lock()  # both tables' commits run at once
            self._federated: dict[str, bool] = {}
            self._file_ios: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}

        def _remember(self, location: str, metadata: Any) -> None:
            with self._lock:
                self._metadata[location] = metadata
                self._metadata.move_to_end(location)
                while len(self._metadata) > METADATA_CACHED:
                    self._metadata.popitem(last=False)

        def _convert_glue_to_iceberg(self, glue_table: Any) -> Any:
            location = (glue_table.get("Parameters") or {}).get("metadata_location")
            with self._lock:
                metadata = self._metadata.get(location) if location else None
            if metadata is None:
                table = super()._convert_glue_to_iceberg(glue_table)
                self._remember(table.metadata_location, table.metadata)
                return table
            return Table(
                identifier=(glue_table["DatabaseName"], glue_table["Name"]),
                metadata=metadata,
                metadata_location=location,
                io=self._load_file_io(metadata.properties, location),
                catalog=self,
            )

        def commit_table(self, table: Any, requirements: Any, updates: Any) -> Any:
            response = super().commit_table(table, requirements, updates)
            self._remember(response.metadata_location, response.metadata)
            return response

        def _load_file_io(self, properties: Any = None, location: str | None = None) -> Any:
            # One file IO (and so one S3 client and its connections) per set of properties,
            # not a new one for every table load and refresh.
            merged = {**self.properties, **(properties or {})}
            scheme = (location or "").split("://")[0]
            key = (scheme, tuple(sorted(merged.items())))
            if key not in self._file_ios:
                self._file_ios[key] = super()._load_file_io(properties or {}, location)
            return self._file_ios[key]

        def _is_s3tables_database(self, database_name: str) -> bool:
            # Asked on every commit (a GetDatabase); what a database is federated with is fixed.
            if database_name not in self._federated:
                self._federated[database_name] = super()._is_s3tables_database(database_name)
            return self._federated[database_name]

        @staticmethod
        def _delete_old_metadata(io: Any, base: Any, metadata: Any) -> None:
            # The metadata files a commit retires are deleted after it, off its critical path
            # (a HEAD and a DELETE each); the orphan sweep catches any this misses.
            _retired.submit(_delete_retired, GlueCatalog._delete_old_metadata, io, base, metadata)

    return CachingGlueCatalog


def glue_catalog(endpoint: str | None = None) -> Any:
    return _caching_glue_catalog()("lake", **catalog_properties(endpoint))


def database_from_environment() -> str:
    return os.environ.get(DATABASE_VARIABLE) or DEFAULT_DATABASE


def table_location(warehouse: str, table: str) -> str:
    return f"{warehouse.rstrip('/')}/{layout.table_prefix(table).rstrip('/')}"


def create_tables(
    catalog: Any, warehouse: str, database: str = DEFAULT_DATABASE, with_database: bool = True
) -> list[str]:
    """Creates the database (unless with_database is False: the cloud template declares it)
    and the Iceberg tables under <warehouse>/lake/<table>/ (the lake is s3://bucket; a test's
    may be file://dir), leaving a table that exists as it is: its data and history are the
    lake."""
    if with_database:
        catalog.create_namespace_if_not_exists(database)
    for table in ICEBERG_TABLES:
        iceberg = iceberg_schema(table)
        catalog.create_table_if_not_exists(
            (database, table),
            schema=iceberg,
            partition_spec=partition_spec(table, iceberg),
            location=table_location(warehouse, table),
            properties=TABLE_PROPERTIES,
        )
    return list(ICEBERG_TABLES)


def day_filter(table: str, day: date) -> Any:
    """The rows of one day, said so that the manifest prunes by the table's partitioning."""
    from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan

    on_day = EqualTo(schema.PARTITION.name, day.isoformat())
    if table != "transactions":
        return on_day
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return And(
        on_day,
        And(
            GreaterThanOrEqual("transaction_datetime", start.isoformat()),
            LessThan("transaction_datetime", (start + timedelta(days=1)).isoformat()),
        ),
    )


def as_table_rows(table: str, rows: pa.Table) -> pa.Table:
    """Rows shaped as the Iceberg table takes them: plain (not dictionary) columns, non-null
    fields, timestamps in us. `rows` must hold every column, dt included."""
    return rows.select(arrow_schema(table).names).cast(arrow_schema(table))


class LakeTables:
    """The process's Iceberg tables, loaded once and refreshed before each commit (a Lambda
    container keeps them between invocations)."""

    def __init__(self, catalog: Any, database: str) -> None:
        self.catalog = catalog
        self.database = database
        self._tables: dict[str, Any] = {}

    def table(self, name: str) -> Any:
        if name not in self._tables:
            self._tables[name] = self.catalog.load_table((self.database, name))
        return self._tables[name]

    def current(self, name: str) -> Any:
        return self.table(name).refresh()


def files_of(
    scan: Any, dictionary_columns: tuple[str, ...] = (), tasks: list[Any] | None = None
) -> Iterator[tuple[Any, list[pa.RecordBatch]]]:
    """A scan's rows a data file at a time, each file's task with its batches, the next file
    read while one is used: at most two files' rows in memory. (pyiceberg's own batch reader
    reads every file of the scan at once and holds them all until they are used: a whole day,
    as to_arrow would.) tasks: the scan's files, if the caller has planned them already
    (planning reads the manifests)."""
    from pyiceberg.io.pyarrow import ArrowScan

    reader = ArrowScan(scan.table_metadata, scan.io, scan.projection(), scan.row_filter,
                       scan.case_sensitive, dictionary_columns=dictionary_columns)  # fmt: skip
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead: tuple[Any, Future[list[pa.RecordBatch]]] | None = None
        for task in scan.plan_files() if tasks is None else tasks:
            read = pool.submit(lambda task=task: list(reader.to_record_batches([task])))
            if ahead is not None:
                yield ahead[0], ahead[1].result()
            ahead = task, read
        if ahead is not None:
            yield ahead[0], ahead[1].result()


def batches_by_file(
    scan: Any, dictionary_columns: tuple[str, ...] = (), tasks: list[Any] | None = None
) -> Iterator[pa.RecordBatch]:
    """files_of's batches, one after another."""
    for _, batches in files_of(scan, dictionary_columns, tasks):
        yield from batches


@contextlib.contextmanager
def commit_lock() -> Iterator[None]:
    """Held around every commit on a catalog that cannot refuse a stale one (see module doc)."""
    path = os.environ.get(COMMIT_LOCK_VARIABLE)
    if not path:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def expire_old_snapshots(table: Any, keep: int = SNAPSHOTS_KEPT) -> int:
    """Expires all but the newest `keep` snapshots (metadata only; their files become orphans
    for the maintenance job to remove); returns how many. Call under commit_lock()."""
    snapshots = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
    old = [s.snapshot_id for s in snapshots[:-keep]] if len(snapshots) > keep else []
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
    return len(old)
