"""The Iceberg tables from schema.py, and commits on a catalog that refuses a stale one."""

import threading
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import DateType, DecimalType, TimestamptzType

from lake_contract import schema, tables
from lake_contract.tables import LakeTables
from lambda_ingest import committer
from lambda_ingest.committer import commit_sources
from lambda_ingest.transform import transform
from tests.factories import ndjson, record, run_at_once


@pytest.mark.parametrize("table", tables.ICEBERG_TABLES)
def test_each_iceberg_table_is_schema_py_plus_dt_with_required_fields_and_docs(table):
    iceberg = tables.iceberg_schema(table)

    assert [f.name for f in iceberg.fields] == [*schema.TABLES[table].names, "dt"]
    assert all(f.required for f in iceberg.fields)
    assert all(f.doc for f in iceberg.fields)
    assert len({f.field_id for f in iceberg.fields}) == len(iceberg.fields) > 0
    assert isinstance(iceberg.find_field("dt").field_type, DateType)


def test_money_is_decimal_and_time_is_utc():
    iceberg = tables.iceberg_schema("transactions")

    assert iceberg.find_field("total_amount").field_type == DecimalType(12, 2)
    assert isinstance(iceberg.find_field("transaction_datetime").field_type, TimestamptzType)
    items = tables.iceberg_schema("transaction_items")
    assert items.find_field("unit_price").field_type == DecimalType(10, 2)


def test_transactions_are_partitioned_by_the_day_of_their_time_and_the_others_by_dt():
    for table, source, transform_type in [
        ("transactions", "transaction_datetime", DayTransform),
        ("transaction_items", "dt", IdentityTransform),
        ("sku_daily_sales", "dt", IdentityTransform),
    ]:
        iceberg = tables.iceberg_schema(table)
        (field,) = tables.partition_spec(table, iceberg).fields
        assert field.source_id == iceberg.find_field(source).field_id, table
        assert isinstance(field.transform, transform_type)


def _catalog(tmp_path) -> SqlCatalog:
    """pyiceberg's SQL catalog on SQLite: unlike moto's Glue, it refuses a stale commit."""
    return SqlCatalog(
        "local", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}"
    )


def _source(key: str, count: int):
    lines = [
        record(f"{key}-{n}", transaction_datetime="2026-03-01T10:00:00Z") for n in range(count)
    ]
    return key, transform(ndjson(*lines), key, datetime(2026, 3, 1, 11, tzinfo=UTC))


def test_tables_are_created_once_with_the_lake_properties(tmp_path):
    catalog = _catalog(tmp_path)
    tables.create_tables(catalog, f"file://{tmp_path}")
    tables.create_tables(catalog, f"file://{tmp_path}")  # again: left as they are

    transactions = catalog.load_table((tables.DEFAULT_DATABASE, "transactions"))
    for name, value in tables.TABLE_PROPERTIES.items():
        assert transactions.properties[name] == value
    assert transactions.location() == f"file://{tmp_path}/lake/transactions"


def test_concurrent_committers_on_an_enforcing_catalog_lose_nothing(tmp_path):
    catalog = _catalog(tmp_path)
    tables.create_tables(catalog, f"file://{tmp_path}")

    def committer(worker: int) -> None:
        lake = LakeTables(_catalog(tmp_path), tables.DEFAULT_DATABASE)  # its own connection
        for batch in range(8):
            commit_sources(lake, [_source(f"w{worker}-b{batch}", 3)], {})

    # No commit lock: the catalog alone must turn each race into a retry, never a lost commit.
    assert run_at_once(committer, 3) == []
    rows = catalog.load_table((tables.DEFAULT_DATABASE, "transactions")).scan().to_arrow()
    assert rows.num_rows == 3 * 8 * 3
    assert len(set(rows["transaction_id"].to_pylist())) == 72
    items = catalog.load_table((tables.DEFAULT_DATABASE, "transaction_items")).scan().to_arrow()
    assert items.num_rows == 72 * 2


def test_the_commit_lock_lets_one_holder_in_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setenv(tables.COMMIT_LOCK_VARIABLE, str(tmp_path / "commit.lock"))
    inside, most = [], []

    def hold() -> None:
        with tables.commit_lock():
            inside.append(1)
            most.append(len(inside))
            threading.Event().wait(0.05)
            inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert max(most) == 1 and len(most) == 4


def test_expiry_keeps_the_newest_snapshots_and_the_rows(tmp_path):
    catalog = _catalog(tmp_path)
    tables.create_tables(catalog, f"file://{tmp_path}")
    lake = LakeTables(catalog, tables.DEFAULT_DATABASE)

    for batch in range(2 * tables.SNAPSHOTS_KEPT + 5):
        commit_sources(lake, [_source(f"b{batch}", 1)], {})

    transactions = lake.current("transactions")
    assert len(transactions.metadata.snapshots) <= 2 * tables.SNAPSHOTS_KEPT
    assert transactions.scan().to_arrow().num_rows == 2 * tables.SNAPSHOTS_KEPT + 5


def test_rows_are_shaped_as_the_table_takes_them():
    _, result = _source("k", 2)
    rows = tables.as_table_rows("transactions", result.transactions)

    assert rows.schema == tables.arrow_schema("transactions")
    assert rows.schema.field("transaction_datetime").type == pa.timestamp("us", tz="UTC")
    assert not pa.types.is_dictionary(rows.schema.field("source_key").type)


def test_the_same_source_delivered_to_racing_committers_lands_once(tmp_path):
    # SQS may hand one message to two Lambdas at once; in AWS no lock orders them, so a commit
    # that lost the race must look its sources up again, not replay its append.
    catalog = _catalog(tmp_path)
    tables.create_tables(catalog, f"file://{tmp_path}")
    start = threading.Barrier(3)

    def committer(worker: int) -> None:
        lake = LakeTables(_catalog(tmp_path), tables.DEFAULT_DATABASE)
        start.wait()  # every worker's first batch races the others'
        for batch in range(4):
            commit_sources(lake, [_source(f"shared-b{batch}", 3)], {})

    assert run_at_once(committer, 3) == []
    rows = catalog.load_table((tables.DEFAULT_DATABASE, "transactions")).scan().to_arrow()
    ids = rows["transaction_id"].to_pylist()
    assert sorted(ids) == sorted({f"shared-b{b}-{n}" for b in range(4) for n in range(3)})
    items = catalog.load_table((tables.DEFAULT_DATABASE, "transaction_items")).scan().to_arrow()
    assert items.num_rows == 12 * 2


def test_staged_files_whose_items_landed_before_a_refused_transactions_commit_land_once(
    tmp_path, monkeypatch
):
    # The retry finds its own sources present (the items commit reached the catalog): the same
    # staged items files are deleted and added again in one snapshot, and nothing doubles.
    from pyiceberg.exceptions import CommitFailedException

    catalog = _catalog(tmp_path)
    tables.create_tables(catalog, f"file://{tmp_path}")
    lake = LakeTables(catalog, tables.DEFAULT_DATABASE)
    staged = committer.combined([committer.stage(lake, [_source(f"s{n}", 2)], foldable=False)
                                 for n in range(3)])  # fmt: skip
    real, refused = committer._commit_table, []

    def refused_once(table, *args, **kwargs):
        if table.name()[-1] == "transactions" and not refused:
            refused.append(args[3].result())  # the items commit has reached the catalog
            raise CommitFailedException("stale version")
        return real(table, *args, **kwargs)

    monkeypatch.setattr(committer, "_commit_table", refused_once)
    monkeypatch.setattr(committer.time, "sleep", lambda seconds: None)

    done = committer.commit_staged(lake, staged, {})

    assert refused and done.replaced_sources == {"s0", "s1", "s2"}
    transactions = lake.current("transactions").scan().to_arrow()
    assert sorted(transactions["transaction_id"].to_pylist()) == sorted(
        f"s{n}-{m}" for n in range(3) for m in range(2)
    )
    items = lake.current("transaction_items")
    assert items.scan().to_arrow().num_rows == 6 * 2
    live = set(items.inspect.files()["file_path"].to_pylist())
    assert live == {f.file_path for f in staged.files["transaction_items"]}
