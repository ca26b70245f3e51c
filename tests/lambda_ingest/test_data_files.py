"""A batch's rows as data files: one file for a day's rows, what pyiceberg writes for several
days, and in both the statistics the committer and the readers rely on."""

import logging
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo

from lake_contract import tables
from lake_contract.tables import LakeTables
from lambda_ingest import committer
from lambda_ingest.data_files import write_data_files
from lambda_ingest.transform import transform
from tests.factories import ndjson, record

KEY = "raw/incoming/dt=2026-03-01/till-7.ndjson"


def _lake(tmp_path) -> LakeTables:
    catalog = SqlCatalog("local", uri=f"sqlite:///{tmp_path}/catalog.db",
                         warehouse=f"file://{tmp_path}")  # fmt: skip
    tables.create_tables(catalog, f"file://{tmp_path}")
    return LakeTables(catalog, tables.DEFAULT_DATABASE)


def _rows(name: str, *days: date) -> pa.Table:
    lines = [record(f"T{d:%d}-{n}", transaction_datetime=f"{d}T{9 + n % 9:02d}:00:00Z")
             for d in days for n in range(40)]  # fmt: skip
    result = transform(ndjson(*lines), KEY, datetime(2026, 3, 3, tzinfo=UTC))
    return committer._rows(name, [(KEY, result)])


def _field_id(table, column: str) -> int:
    return table.schema().find_field(column).field_id


def test_a_days_rows_are_one_file_with_the_bounds_readers_and_the_committer_use(tmp_path, caplog):
    lake = _lake(tmp_path)
    items = lake.table("transaction_items")
    rows = _rows("transaction_items", date(2026, 3, 1))

    with caplog.at_level(logging.WARNING):
        (written,) = write_data_files(items, rows)

    assert not caplog.records  # no warning for the columns written without min/max
    assert written.record_count == rows.num_rows
    assert written.partition[0] == (date(2026, 3, 1) - date(1970, 1, 1)).days
    assert "/transaction_items/data/dt=2026-03-01/" in written.file_path  # as pyiceberg places it
    source = _field_id(items, "source_key")
    assert written.lower_bounds[source] == written.upper_bounds[source] == KEY.encode()
    assert _field_id(items, "quantity") in written.lower_bounds  # a number: prunable
    assert _field_id(items, "transaction_id") not in written.lower_bounds  # unique ids: not
    parquet = pq.ParquetFile(written.file_path.removeprefix("file://")).metadata
    columns = {parquet.row_group(0).column(i).path_in_schema: parquet.row_group(0).column(i)
               for i in range(parquet.num_columns)}  # fmt: skip
    assert not columns["transaction_id"].has_dictionary_page
    assert columns["sku_id"].has_dictionary_page

    with items.transaction() as commit, commit.update_snapshot().fast_append() as append:
        append.append_data_file(written)
    read = lake.current("transaction_items").scan(
        row_filter=EqualTo("source_key", KEY)).to_arrow()  # fmt: skip
    assert read.cast(rows.schema).sort_by("transaction_id").equals(rows.sort_by("transaction_id"))


def test_rows_of_two_days_are_a_file_a_day_as_pyiceberg_writes_them(tmp_path):
    lake = _lake(tmp_path)
    transactions = lake.table("transactions")
    rows = _rows("transactions", date(2026, 3, 1), date(2026, 3, 2))

    written = write_data_files(transactions, rows)

    assert sorted(f.record_count for f in written) == [40, 40]
    assert sorted(f.partition[0] for f in written) == [
        (d - date(1970, 1, 1)).days for d in (date(2026, 3, 1), date(2026, 3, 2))
    ]
    assert write_data_files(transactions, rows.slice(0, 0)) == []
