"""The local query engine: DuckDB over the lake, in S3 (moto or AWS) or a local folder.

In S3 the fact tables are Iceberg tables: each query first asks the Glue catalog for every
table's current metadata file (one GetTables call: every table as of one moment, so a
transaction is never seen without its items, which commit first) and scans that snapshot, with
no S3 listing. A commit the Lambda made a moment ago is therefore in the next query. The
reference tables are one Parquet object each, and quarantine is NDJSON objects.

A local folder is the plain Parquet layout that `supermarket convert` writes
(lake/<table>/dt=.../*.parquet, hive-partitioned by dt).
"""

import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import duckdb
import duckdb_extension_avro
import duckdb_extension_httpfs
import duckdb_extension_iceberg
import pyarrow as pa

from lake_contract import layout, schema, tables
from lake_contract.quarantine import QUARANTINE_RECORD, QUARANTINE_TABLE
from supermarket_queries import views
from supermarket_queries.watermark import FolderWatermark, S3Watermark


def _extension(package: ModuleType, name: str) -> Path:
    """An extension shipped inside its wheel, so nothing is ever downloaded."""
    return (
        Path(package.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / f"{name}.duckdb_extension"
    )


HTTPFS = _extension(duckdb_extension_httpfs, "httpfs")
# iceberg loads avro itself unless it is loaded first, and that would mean a download.
S3_EXTENSIONS = (HTTPFS, _extension(duckdb_extension_avro, "avro"),
                 _extension(duckdb_extension_iceberg, "iceberg"))  # fmt: skip


class QueryError(Exception):
    """SQL the engine refused, with the engine's own explanation."""


def _s3_secret(endpoint: str) -> str:
    """A secret pointing httpfs at an S3-compatible endpoint such as moto on loopback."""
    url = urlparse(endpoint)
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    key_id = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
    return (
        "CREATE OR REPLACE SECRET lake (TYPE s3, "
        f"KEY_ID '{key_id}', SECRET '{secret}', REGION '{region}', "
        f"ENDPOINT '{url.netloc}', URL_STYLE 'path', USE_SSL {str(url.scheme == 'https').lower()})"
    )


_PRUNED_BY = frozenset({"ingested_at"})


def _athena_columns(table: str) -> str:
    """The select list that gives a table Athena's types.

    Athena reads the lake's UTC timestamps as plain `timestamp`; DuckDB would read them as
    TIMESTAMPTZ, whose functions go through ICU (date_trunc: 0.8 s on 10M rows). Rebuilding a
    plain TIMESTAMP from the epoch is exact, ICU-free (0.1 s), and matches Athena's results.
    `ingested_at` stays as stored: the store views filter on it, and DuckDB pushes a filter
    into the scan (skipping files and row groups) only on a column the scan gives as it is.
    """
    plain = [
        f"make_timestamp(epoch_us({f.name})) AS {f.name}"
        for f in schema.TABLES[table]
        if pa.types.is_timestamp(f.type) and f.name not in _PRUNED_BY
    ]
    return f"* REPLACE ({', '.join(plain)})" if plain else "*"


def _duckdb_type(type_: pa.DataType) -> str:
    return "INTEGER" if pa.types.is_int32(type_) else "VARCHAR"


def _reads(sql: str, table: str) -> bool:
    """Whether the SQL may read the table: it, or a view it names, names it. Looking for a
    first file is a listing (33 ms on moto for quarantine/), not to be paid by every query."""
    text = sql.lower()
    named = [views.duckdb_sql(v).lower() for v in views.view_names() if v in text]  # cached
    return any(table in t for t in [text, *named])


class LocalEngine:
    """DuckDB with every lake table and curated view, over s3://bucket or a folder."""

    def __init__(
        self,
        lake: str,
        endpoint: str | None = None,
        database: str | None = None,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        """memory_limit ('256MB') and threads bound DuckDB for a long-running reader (the
        dashboard); unset, DuckDB's defaults (80% of RAM, one thread a core)."""
        self.lake = lake.rstrip("/")
        self.connection = duckdb.connect()
        self.connection.execute("SET autoinstall_known_extensions = false")
        self.connection.execute("SET autoload_known_extensions = false")
        self.connection.execute("SET TimeZone = 'UTC'")
        if memory_limit is not None:
            self.connection.execute(f"SET memory_limit = '{memory_limit}'")
            # What does not fit spills here, not into a .tmp/ in whatever the cwd is.
            spill = Path(tempfile.gettempdir()) / f"supermarket-duckdb-{os.getpid()}"
            self.connection.execute(f"SET temp_directory = '{spill}'")
            # Hand freed memory back to the OS after a big query, not at 128 MiB peaks only.
            self.connection.execute("SET allocator_flush_threshold = '16MB'")
            self.connection.execute("SET allocator_background_threads = true")
        if threads is not None:
            self.connection.execute(f"SET threads = {int(threads)}")
        if not self.in_s3:  # the OS page cache already holds local files: no second copy
            self.connection.execute("SET enable_external_file_cache = false")
        self.endpoint = endpoint
        self.database = database or tables.database_from_environment()
        self.snapshots: dict[str, str | None] = {}  # Iceberg table -> metadata file now bound
        if self.in_s3:
            for extension in S3_EXTENSIONS:
                self.connection.execute(f"LOAD '{extension}'")
            self.endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL")
            if self.endpoint:
                self.connection.execute(_s3_secret(self.endpoint))
        self._watermark: S3Watermark | FolderWatermark | None = None
        self._stand_ins: set[str] = set()  # tables with no file yet
        # Every Iceberg table's snapshot from one catalog call, not a call per table.
        located = self.metadata_locations() if self.iceberg else {}
        for table in [*schema.TABLES, QUARANTINE_TABLE]:
            if table in located:
                self._bind_iceberg(table, located[table])
            else:
                self._bind(table)
        for name in views.view_names():
            self.connection.execute(f"CREATE OR REPLACE VIEW {name} AS {views.duckdb_sql(name)}")

    def _bind(self, table: str) -> None:
        self.connection.execute(f"CREATE OR REPLACE VIEW {table} AS {self._scan(table)}")

    def _bind_iceberg(self, table: str, location: str | None, snapshot: int | None = None) -> None:
        scan = self._scan_iceberg(table, location, snapshot)
        self.connection.execute(f"CREATE OR REPLACE VIEW {table} AS {scan}")

    @property
    def in_s3(self) -> bool:
        return self.lake.startswith("s3://")

    @property
    def iceberg(self) -> bool:
        return self.in_s3

    def _glue(self) -> Any:
        from lake_contract.s3 import aws_client

        return aws_client("glue", self.endpoint or None)

    def metadata_location(self, table: str) -> str | None:
        """The table's current Iceberg metadata file, from the catalog; None before it exists."""
        try:
            found = self._glue().get_table(DatabaseName=self.database, Name=table)
        except self._glue().exceptions.EntityNotFoundException:
            return None
        return found["Table"].get("Parameters", {}).get("metadata_location")

    def _scan(self, table: str) -> str:
        if table == QUARANTINE_TABLE:
            return self._scan_quarantine()
        prefix = f"{self.lake}/{layout.table_prefix(table)}"
        if table in schema.PARTITIONED_TABLES:
            files = f"{prefix}{schema.PARTITION.name}=*/*.parquet"
            options = ", hive_partitioning = true, hive_types = {'dt': DATE}"
            present = self._has_files(files)
        else:  # its one object by name: a glob is a listing, which grows with the bucket
            files, options = f"{self.lake}/{layout.reference_key(table)}", ""
            present = self._has_object(layout.reference_key(table))
        scan = f"SELECT {_athena_columns(table)} FROM read_parquet('{files}'{options})"
        if present:
            self._stand_ins.discard(table)
            return scan
        self._stand_ins.add(table)
        return self._empty(table)

    def _scan_iceberg(self, table: str, location: str | None, snapshot: int | None = None) -> str:
        self.snapshots[table] = location
        if location is None:
            self._stand_ins.add(table)
            return self._empty(table)
        self._stand_ins.discard(table)
        as_of = f", snapshot_from_id = {int(snapshot)}" if snapshot is not None else ""
        return f"SELECT {_athena_columns(table)} FROM iceberg_scan('{location}'{as_of})"

    def metadata_locations(self) -> dict[str, str | None]:
        """Every Iceberg table's current metadata file, from one catalog call (a call per table
        was ~8 ms each on moto, before every query)."""
        glue = self._glue()
        found: dict[str, str | None] = dict.fromkeys(tables.ICEBERG_TABLES)
        try:
            for page in glue.get_paginator("get_tables").paginate(DatabaseName=self.database):
                for table in page["TableList"]:
                    if table["Name"] in found:
                        found[table["Name"]] = table.get("Parameters", {}).get("metadata_location")
        except glue.exceptions.EntityNotFoundException:
            pass
        return found

    def _follow_commits(self) -> None:
        """Rebinds each Iceberg table whose current snapshot moved, as of one catalog call."""
        for table, location in self.metadata_locations().items():
            if location != self.snapshots.get(table):
                self._bind_iceberg(table, location)

    def as_of(self, table: str, snapshot_id: int) -> None:
        """Pins `table` to an earlier snapshot until the next query that follows commits: for
        a query as of then, e.g. engine.as_of(...) then engine.query(sql, follow=False)."""
        location = self.metadata_location(table)
        self._bind_iceberg(table, location, snapshot_id)
        self.snapshots[table] = f"{location}@{snapshot_id}"  # the next follow binds now again

    def _scan_quarantine(self) -> str:
        """The quarantine NDJSON objects as rows, typed by the record's schema."""
        files = f"{self.lake}/{layout.QUARANTINE}*.ndjson"
        if not self._has_files(files):
            self._stand_ins.add(QUARANTINE_TABLE)
            self.connection.register("empty_quarantine", QUARANTINE_RECORD.empty_table())
            return "SELECT * FROM empty_quarantine"
        self._stand_ins.discard(QUARANTINE_TABLE)
        columns = ", ".join(f"'{f.name}': '{_duckdb_type(f.type)}'" for f in QUARANTINE_RECORD)
        lines = f"format = 'newline_delimited', columns = {{{columns}}}"
        return f"SELECT * FROM read_json('{files}', {lines})"

    def _has_files(self, pattern: str) -> bool:
        return bool(
            self.connection.execute("SELECT count(*) FROM glob(?)", [pattern]).fetchone()[0]
        )

    def _has_object(self, key: str) -> bool:
        if not self.in_s3:
            return (Path(self.lake) / key).is_file()
        return self._bucket().etag(key) is not None

    def _bucket(self) -> Any:
        from lake_contract.s3 import LakeBucket, s3_client

        # The engine's endpoint, which may differ from the process's AWS_ENDPOINT_URL.
        return LakeBucket(urlparse(self.lake).netloc, s3_client(self.endpoint or None))

    def _empty(self, table: str) -> str:
        """A typed, empty stand-in until the first file lands (DuckDB refuses an empty glob)."""
        fields = list(schema.TABLES[table])
        if table in schema.PARTITIONED_TABLES:
            fields.append(schema.PARTITION)
        empty = pa.schema(fields).empty_table()
        name = f"empty_{table}"
        self.connection.register(name, empty)
        return f"SELECT {_athena_columns(table)} FROM {name}"

    def query(self, sql: str, follow: bool = True) -> pa.Table:
        """Runs SQL on the lake as it is now (follow=False: on the snapshots bound before)."""
        if follow and self.iceberg:
            self._follow_commits()
        for table in list(self._stand_ins):  # a first file may have landed since
            if not (self.iceberg and table in tables.ICEBERG_TABLES) and _reads(sql, table):
                self._bind(table)
        try:
            return self.connection.execute(sql).arrow().read_all()
        except duckdb.Error as exc:
            raise QueryError(str(exc).split("\n")[0]) from exc

    def data_version(self) -> str:
        """A token that changes whenever any table's content changes; cheap enough to call
        every few seconds (a catalog call, two HEADs and a listing in S3), so a caller re-runs a
        view only when something is new."""
        if self._watermark is None:
            if self.in_s3:
                self._watermark = S3Watermark(
                    self._bucket(), lambda: list(self.metadata_locations().values())
                )
            else:
                self._watermark = FolderWatermark(Path(self.lake))
        return self._watermark.version()

    def view(self, name: str, where: str | None = None) -> pa.Table:
        views.athena_sql(name)  # raises UnknownView with the list of views
        return self.query(f"SELECT * FROM {name}" + (f" WHERE {where}" if where else ""))
